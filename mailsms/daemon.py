"""``mailsms serve``: bind the listeners, prepare the state directory, run until a signal.

Start-up order makes failure clean: listeners are bound first (a port in
use fails at once, naming the address), then the state directory is made;
if anything fails, whatever was started is stopped again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from mailsms import __version__, sdnotify, startup
from mailsms.config import Config
from mailsms.config import load as load_config
from mailsms.dispatch import GatewayPool
from mailsms.dkim_sign import load_signer
from mailsms.errors import EX_CANTCREAT, EX_UNAVAILABLE, ConfigError, MailsmsError, NotReady
from mailsms.fallback import Fallbacks
from mailsms.inbound import InboundPipeline
from mailsms.ingest import new_queue_id
from mailsms.mailout import Mailout, local_hostname
from mailsms.mailout_agents import make_agent
from mailsms.metrics import Metrics
from mailsms.mo import mo_from_transport
from mailsms.recent import RecentEvents
from mailsms.reload import merge
from mailsms.reporter import Reporter
from mailsms.routing import Router
from mailsms.scheduler import RetryPolicy, Scheduler
from mailsms.server import Handler, listen, protocol_factory
from mailsms.store.engines import node_names, open_store, redact_url
from mailsms.store.inbound import insert_inbound
from mailsms.store.queue import QueueStore
from mailsms.tls import server_context
from mailsms.values import ListenAddress
from mailsms.web import make_app, web_services
from mailsms.web_status import StatusServices
from replylog.store import record_on_submit
from transports import registry
from transports.base import DeliveryReport, IncomingSms, Transport, TransportContext

log = logging.getLogger("mailsms.master")

# Seconds a stopping daemon gives the inbound pipeline to settle the MO in hand.
INBOUND_STOP_GRACE = 5.0
# How long a delivery report waits for its part's gateway id to be committed.


class ListenError(MailsmsError):
    """A listener cannot bind its address."""

    exit_code = EX_UNAVAILABLE


class StateDirError(MailsmsError):
    """The state directory cannot be created or written."""

    exit_code = EX_CANTCREAT


def prepare_state_dir(path: Path) -> None:
    """Create ``path`` with mode 0700 (parents too); it must end up a writable directory."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise StateDirError(f"cannot create state directory {path} (state.dir): a file is in the way") from None
    except OSError as exc:
        raise StateDirError(f"cannot create state directory {path} (state.dir): {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StateDirError(f"state directory {path} (state.dir) is not writable")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("state directory %s has mode %o: others can read queued messages; use 0700", path, mode)


@dataclass
class Daemon:
    """The running service; ``start``/``stop`` are usable in-process by tests."""

    config: Config
    servers: list[asyncio.Server] = field(default_factory=list)
    runner: web.AppRunner | None = None
    bound: dict[str, ListenAddress] = field(default_factory=dict)
    store: QueueStore | None = None
    transports: dict[str, Transport] = field(default_factory=dict)
    scheduler: Scheduler | None = None
    fallbacks: Fallbacks | None = None
    _scheduler_task: asyncio.Task[None] | None = None
    mailout: Mailout | None = None
    _mailout_task: asyncio.Task[None] | None = None
    reporter: Reporter | None = None
    inbound: InboundPipeline | None = None
    _inbound_task: asyncio.Task[None] | None = None
    handler: Handler | None = None
    metrics: Metrics = field(default_factory=Metrics)  # /metrics and /status (mailsms.metrics)
    events: RecentEvents = field(default_factory=RecentEvents)  # the last log events, for /status

    async def start(self) -> None:
        self.events.attach()
        try:
            await self._bind_listeners()
            prepare_state_dir(self.config.state_dir)
            startup.run_checks(self.config)  # StartupFailed: one line per problem, its exit code
            await self._start_queue()
        except BaseException:
            await self.stop()
            raise
        for srv in self.servers:
            await srv.start_serving()
        where = ", ".join(f"{name} on {addr}" for name, addr in self.bound.items()) or "no listeners"
        log.info("daemon started -- version %s, configuration %s: %s", __version__, self.config.source, where)
        sdnotify.ready(where)

    async def _start_queue(self) -> None:
        """Open the queue, start the transports and the scheduler; listeners serve only after this."""
        state_dir = self.config.state_dir
        store_cfg = self.config.store
        try:
            self.store = open_store(store_cfg.url, state_dir, lease_seconds=store_cfg.lease_seconds)
        except ConfigError:
            raise
        except Exception as exc:
            where = redact_url(store_cfg.url) + " (store.url)" if store_cfg.url else f"{state_dir} (state.dir)"
            raise StateDirError(f"cannot open the queue in {where}: {exc}") from None
        here = node_names(state_dir) if self.store.node else frozenset()
        for gateway in self.config.gateways:
            if gateway.nodes and here.isdisjoint(gateway.nodes):
                log.info("gateway %s: talked to by node(s) %s, not this one (%s)", gateway.id,
                         ", ".join(gateway.nodes), self.store.node)  # fmt: skip
                continue
            context = TransportContext(
                gateway.id, state_dir, self._on_report, self._public_url(), webhook_secret=gateway.webhook_secret,
                mo_sink=self._on_mo,
            )  # fmt: skip
            transport = registry.create(gateway.type, gateway.options, context)
            await transport.start()
            self.transports[gateway.id] = transport
        queue = self.config.queue
        policy = RetryPolicy(
            queue.minimal_backoff_time, queue.maximal_backoff_time, queue.maximal_queue_lifetime, queue.queue_run_delay
        )
        self.mailout = self._make_mailout(self.store, policy)
        self._mailout_task = asyncio.create_task(self.mailout.run(), name="mailout")
        self.reporter = Reporter(self.store, self.mailout, queue.maximal_queue_lifetime)
        config = self.config
        pool = GatewayPool(Router(config.routes, config.gateways, config.groups))
        self.fallbacks = Fallbacks(self.store, new_queue_id, wake=_no_wake)
        self.scheduler = Scheduler(
            self.store, self.transports, policy, concurrency=queue.concurrency, reporter=self.reporter, pool=pool,
            fallbacks=self.fallbacks,
        )  # fmt: skip
        self.fallbacks.wake = self.scheduler.wake
        self.handler.store = self.store  # type: ignore[union-attr]
        self.handler.share_limits()  # type: ignore[union-attr]
        self.handler.wake = self.scheduler.wake  # type: ignore[union-attr]
        self.scheduler.metrics = self.metrics
        self.metrics.gateways(self.transports)
        self.metrics.watch(self)
        self._start_inbound(self.store, self.mailout)
        self._scheduler_task = asyncio.create_task(self.scheduler.run(), name="scheduler")
        if self.store.node:
            new_queue_id.on_node(getattr(self.store, "node_number", 0))
            self.store.numbered = new_queue_id.on_node
            loop = asyncio.get_running_loop()
            self.store.listen(functools.partial(loop.call_soon_threadsafe, self.scheduler.wake))
            log.info("queue shared on %s as node %s", redact_url(store_cfg.url), self.store.node)

    def _start_inbound(self, store: QueueStore, mailout: Mailout) -> None:
        """Reply links recorded with every submission, and the pipeline that routes incoming SMS to mailboxes."""
        assert self.handler is not None  # made by _bind_listeners first
        store.submit_hooks.append(functools.partial(record_on_submit, mode=self.config.replylog.record))
        self.inbound = InboundPipeline(self.config, store, mailout, self.handler)
        self.inbound.metrics = self.metrics
        self.handler.inbound_wake = self.inbound.wake
        self._inbound_task = asyncio.create_task(self.inbound.run(), name="inbound")

    def _make_mailout(self, store: QueueStore, policy: RetryPolicy) -> Mailout:
        """The mail-out queue and its agent for ``mailout.mode`` (reports to senders go through it)."""
        settings = self.config.mailout
        hostname = local_hostname(settings.hostname)
        agent = make_agent(settings, hostname, self.config.state_dir / "mail")
        signer = load_signer(settings)  # ConfigError (78) for a key that cannot be used
        return Mailout(store, agent, hostname, policy, concurrency=settings.concurrency, signer=signer)

    def _public_url(self) -> str:
        """web.public_url, or the bound HTTP listener's own address."""
        if self.config.web.public_url:
            return self.config.web.public_url.rstrip("/")
        http = self.bound.get("http")
        if http is None:
            return ""
        return f"http://{http}"

    async def _on_report(self, report: DeliveryReport) -> None:
        await self.apply_report(report)

    async def _on_mo(self, sms: IncomingSms) -> str:
        """Commit an SMS a transport received itself (a modem), as ``/inbound/`` commits a webhook's."""
        if self.store is None or self.handler is None:
            raise NotReady()
        mo = mo_from_transport(sms, id=self.handler.new_id(), received=self.handler.clock())
        stored_id, repeated = await self.store.write(functools.partial(insert_inbound, mo=mo))
        if not repeated:
            self.handler.inbound_wake()
        status = "duplicate, stored before" if repeated else "received"
        log.info("%s: from=<%s>, to=<%s>, relay=%s, smsc_id=%s, udh=%s, chars=%d, status=%s", stored_id, mo.sender,
                 mo.to or "-", mo.gateway, mo.smsc_id or "-", mo.udh.hex() or "-", len(mo.text), status)  # fmt: skip
        return stored_id

    async def apply_report(self, report: DeliveryReport) -> str | None:
        """Apply a final delivery report: the queue id; ``KEPT`` when it came before its part's
        submission was committed (the commit that records it applies the report); None when
        no part of the gateway has its id."""
        if self.scheduler is None:
            return None
        return await self.scheduler.on_report(report)

    async def _bind_listeners(self) -> None:
        server_cfg = self.config.server
        self.handler = handler = Handler(self.config, None, _no_wake)  # store and wake are set by _start_queue
        handler.metrics = self.metrics
        smtp_factory = protocol_factory(handler, lmtp=False, tls_context=server_context(server_cfg))
        for name, key, addr, factory in (
            ("lmtp", "server.lmtp_listen", server_cfg.lmtp_listen, protocol_factory(handler, lmtp=True)),
            ("smtp", "server.smtp_listen", server_cfg.smtp_listen, smtp_factory),
        ):
            if addr is None:
                continue
            try:
                srv = await listen(factory, addr.host, addr.port)
            except OSError as exc:
                raise ListenError(f"cannot listen on {addr} ({key}): {exc.strerror or exc}") from None
            self.servers.append(srv)
            self.bound[name] = _bound_address(srv, addr)
        if self.config.milter.listen:
            await self._bind_milter(handler, self.config.milter.listen)
        if server_cfg.http_listen is not None:
            await self._start_http(server_cfg.http_listen)

    async def _bind_milter(self, handler: Handler, spec: str) -> None:
        from milter.server import start_milter

        try:
            srv = await start_milter(handler, spec, start_serving=False)
        except OSError as exc:
            raise ListenError(f"cannot listen on {spec} (milter.listen): {exc.strerror or exc}") from None
        log.info("milter on %s", spec)
        self.servers.append(srv)

    async def _start_http(self, addr: ListenAddress) -> None:
        assert self.handler is not None  # made by _bind_listeners first
        status = StatusServices(self.config, self.metrics, self.events, self)
        app = make_app(web_services(self.config, self.handler, self.apply_report), status)
        # No access log: request lines may carry pass= or a gateway's secret.
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, addr.host, addr.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise ListenError(f"cannot listen on {addr} (server.http_listen): {exc.strerror or exc}") from None
        server = site._server  # aiohttp keeps the asyncio.Server here; needed for port 0
        self.bound["http"] = _bound_address(server, addr) if isinstance(server, asyncio.Server) else addr

    def _grace(self) -> float:
        """How long a stop waits for work in flight: queue.stop_grace_time, within server.shutdown_timeout."""
        return min(self.config.queue.stop_grace_time, self.config.server.shutdown_timeout)

    async def stop(self) -> None:
        """Stop taking mail, let messages in flight finish, then close transports, HTTP and the queue.

        The HTTP listener stays up while messages in flight finish, so that
        their delivery reports still land; it closes before the queue does.
        """
        sdnotify.stopping()
        for srv in self.servers:
            srv.close()
        for srv in self.servers:
            await srv.wait_closed()
        self.servers.clear()
        await self._stop_inbound()
        if self.scheduler is not None:
            await self.scheduler.stop(self._grace())
        if self._scheduler_task is not None:
            self._scheduler_task.cancel()
            await asyncio.gather(self._scheduler_task, return_exceptions=True)
            self._scheduler_task = None
        if self.reporter is not None:
            await self.reporter.stop()
        if self.fallbacks is not None:
            await self.fallbacks.stop()
        if self.mailout is not None:
            await self.mailout.stop(self._grace())
        if self._mailout_task is not None:
            self._mailout_task.cancel()
            await asyncio.gather(self._mailout_task, return_exceptions=True)
            self._mailout_task = None
        for transport in self.transports.values():
            await transport.close()
        self.transports.clear()
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        if self.handler is not None:
            self.handler.store = None  # anything still arriving hears "not ready", not a closed file's error
        if self.store is not None:
            self.store.close()
            self.store = None
        self.events.detach()

    async def _stop_inbound(self) -> None:
        """Let the MO in hand be settled (what it caused is committed with it), then end the pipeline."""
        if self.inbound is not None:
            await self.inbound.stop()
        if self._inbound_task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._inbound_task), INBOUND_STOP_GRACE)
            self._inbound_task.cancel()
            await asyncio.gather(self._inbound_task, return_exceptions=True)
            self._inbound_task = None

    async def run_until_signal(self) -> int:
        """Serve until SIGTERM or SIGINT; a clean stop returns 0."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        names: dict[signal.Signals, str] = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            names[signum] = signal.Signals(signum).name
            loop.add_signal_handler(signum, _note_signal, stopping, names[signum])
        reloads: set[asyncio.Task[bool]] = set()

        def on_hangup() -> None:
            task = asyncio.create_task(self.reload(), name="reload")
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        await self.start()
        loop.add_signal_handler(signal.SIGHUP, on_hangup)
        try:
            await stopping.wait()
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
            for signum in names:
                loop.remove_signal_handler(signum)
            await asyncio.gather(*reloads, return_exceptions=True)
            await self.stop()
        log.info("daemon stopped")
        return 0

    async def reload(self) -> bool:
        """SIGHUP: read the configuration file again; apply what can change while running
        (mailsms.reload); a file with problems changes nothing.  True when applied."""
        source = self.config.source
        path = Path(source)
        if not path.is_file():
            log.warning("reload: configuration %s is not a file; nothing to reload", source)
            return False
        sdnotify.notify("RELOADING=1")
        try:
            new = await asyncio.to_thread(load_config, path)
            merged, kept = merge(self.config, new)
            router = Router(merged.routes, merged.gateways, merged.groups)
        except MailsmsError as exc:
            for line in exc.details():
                log.error("reload: %s", line)
            log.error("reload: configuration %s has problems; the running configuration is kept", source)
            return False
        finally:
            sdnotify.notify("READY=1")
        self.config = merged
        if self.handler is not None:
            self.handler.reconfigure(merged)
        if self.scheduler is not None:
            queue = merged.queue
            policy = RetryPolicy(
                queue.minimal_backoff_time, queue.maximal_backoff_time, queue.maximal_queue_lifetime,
                queue.queue_run_delay,
            )  # fmt: skip
            self.scheduler.reconfigure(policy, queue.concurrency, self.scheduler.gateways.rebuilt(router))
        if kept:
            log.warning("reload: changes to %s need a restart; the running ones are kept", ", ".join(kept))
        log.info("reload: configuration %s applied", source)
        return True


def _no_wake() -> None:
    """Placeholder until the scheduler exists; listeners do not serve before that."""


def _note_signal(stopping: asyncio.Event, name: str) -> None:
    log.info("%s received, stopping", name)
    stopping.set()


def _bound_address(srv: asyncio.Server, wanted: ListenAddress) -> ListenAddress:
    sockets = srv.sockets
    if not sockets:
        return wanted
    return ListenAddress(wanted.host, int(sockets[0].getsockname()[1]))


def serve(config: Config) -> int:
    """Run the daemon in a fresh event loop."""
    import sys

    sys.setswitchinterval(float(os.environ.get("SWI", "0.005")))
    return asyncio.run(Daemon(config).run_until_signal())
