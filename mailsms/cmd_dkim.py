"""``mailsms dkim-keygen``: write a DKIM private key and print the DNS TXT record to publish.

The selector, domain and key file default to ``mailout.dkim_selector``,
``dkim_domain`` and ``dkim_key_file`` of the configuration, so that after
``mailsms dkim-keygen`` the daemon signs with the new key.  An existing key
file is never overwritten (``--force`` does).  The key file gets mode 0600.

Exit codes: 0 written, 64 usage (no selector, domain or file), 73 the file
cannot be written (or exists), 69 the tool for the key type is missing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mailsms.errors import EX_CANTCREAT, EX_OK, EX_UNAVAILABLE, EX_USAGE


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "dkim-keygen",
        parents=[parent],
        help="write a DKIM key for the mail mailsms sends and print its DNS record",
        description="Write a DKIM private key and print the TXT record to publish at "
        "<selector>._domainkey.<domain>. Defaults come from mailout.dkim_* of the configuration.",
    )
    parser.add_argument("--algorithm", choices=("rsa", "ed25519"), default=None,
                        help="key type (default: mailout.dkim_algorithm, rsa)")  # fmt: skip
    parser.add_argument("--bits", type=int, choices=(1024, 2048, 3072, 4096), default=2048, help="RSA key size")
    parser.add_argument("--selector", default=None, help="default: mailout.dkim_selector")
    parser.add_argument("--domain", default=None, help="default: mailout.dkim_domain")
    parser.add_argument("--out", metavar="FILE", default=None, help="default: mailout.dkim_key_file")
    parser.add_argument("--force", action="store_true", help="replace an existing key file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from mailsms import config
    from mailsms.dkim_sign import generate_key
    from replylog.route import is_domain

    settings = config.load(config.config_path(getattr(args, "config", None))).mailout
    algorithm = args.algorithm or settings.dkim_algorithm
    selector = args.selector or settings.dkim_selector
    domain = args.domain or settings.dkim_domain
    out = args.out or settings.dkim_key_file
    for name, value in (("--selector", selector), ("--domain", domain), ("--out", out)):
        if not value:
            print(f"mailsms: give {name} (or set mailout.dkim_{name[2:].replace('out', 'key_file')})", file=sys.stderr)
            return EX_USAGE
    if not is_domain(selector) or not is_domain(domain):
        print("mailsms: the selector and the domain must be names such as sms and sms.example.com", file=sys.stderr)
        return EX_USAGE
    try:
        key = generate_key(algorithm, args.bits)
    except RuntimeError as exc:
        print(f"mailsms: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    path = Path(out)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if args.force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.private)
        os.chmod(path, 0o600)
    except FileExistsError:
        print(f"mailsms: {path} exists; --force replaces it", file=sys.stderr)
        return EX_CANTCREAT
    except OSError as exc:
        print(f"mailsms: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return EX_CANTCREAT
    print(f"; {algorithm} key written to {path}; publish this record, then set in [mailout]:")
    print(f';   dkim_selector = "{selector}"  dkim_domain = "{domain}"  dkim_key_file = "{path}"', end="")
    print(f'  dkim_algorithm = "{algorithm}"')
    print(key.dns_record(selector, domain))
    return EX_OK
