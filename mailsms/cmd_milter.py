"""``mailsms milter``: the milter alone, for an MTA that delivers to mailsms some other way."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "milter",
        parents=[parent],
        help="run only the milter (the MTA checks sms: recipients at RCPT time)",
        description="Run the milter alone. Postfix: smtpd_milters = inet:127.0.0.1:8891 (see "
        "conf/postfix-milter.cf.sample). SIGTERM or SIGINT stop it.",
    )
    parser.add_argument(
        "--listen",
        metavar="SOCKET",
        default="",
        help="inet:HOST:PORT or unix:/path (default: milter.listen)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from mailsms import config, log
    from mailsms.errors import EX_USAGE

    log.setup(getattr(args, "log_level", "info"))
    loaded = config.load(config.config_path(getattr(args, "config", None)))
    spec = args.listen or loaded.milter.listen
    if not spec:
        print("mailsms milter: no socket: give --listen inet:HOST:PORT or set milter.listen")
        return EX_USAGE
    return asyncio.run(_serve(loaded, spec))


async def _serve(loaded: Any, spec: str) -> int:
    import asyncio
    import logging
    import signal

    from mailsms.daemon import ListenError
    from mailsms.server import Handler
    from mailsms.store.engines import engine_of, open_store, sqlite_path
    from milter.server import start_milter

    url = loaded.store.url
    exists = engine_of(url) == "postgresql" or sqlite_path(url, loaded.state_dir).exists()
    store = open_store(url, loaded.state_dir, node="milter") if exists else None  # accounts: once there is state
    handler = Handler(loaded, store, lambda: None)
    try:
        try:
            server = await start_milter(handler, spec)
        except (OSError, ValueError) as exc:
            raise ListenError(f"cannot listen on {spec}: {getattr(exc, 'strerror', None) or exc}") from None
        logging.getLogger("mailsms.milter").info("milter on %s", spec)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()
        server.close()
        await server.wait_closed()
    finally:
        if store is not None:
            store.close()
    return 0
