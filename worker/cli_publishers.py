"""Identity commands of the ``wasmjob`` CLI: publisher keys, extension owners, tenant tokens.

``publisher`` manages the key a publisher signs releases with (their own machine);
``publishers``, ``owners`` and ``tenants`` are the operator's: they need credentials that
may write the registry, or the fleet's tenant secret.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .errors import ConfigError


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """Add ``publisher``, ``publishers``, ``owners`` and ``tenants``."""
    p = sub.add_parser("publisher", help="your publisher key: releases you add are signed with it")
    psub = p.add_subparsers(dest="publisher_command", required=True)
    for name, text in (("init", "create a new key"), ("show", "print the public key (give it to the operator)")):
        q = psub.add_parser(name, help=text)
        q.add_argument("--key", help="key file (default: $WASMJOB_PUBLISHER_KEY or the user config directory)")
        q.set_defaults(func=cmd_publisher, action=name)

    p = sub.add_parser("publishers", help="operator: publisher keys allowed to claim new extension ids")
    psub = p.add_subparsers(dest="publishers_command", required=True)
    q = psub.add_parser("list", parents=[common], help="registered publisher keys")
    q.set_defaults(func=cmd_publishers_list)
    q = psub.add_parser("allow", parents=[common], help="register a publisher's public key under a name")
    q.add_argument("name", help="who the key belongs to")
    q.add_argument("public_key", help="their public key, as `wasmjob publisher show` prints it")
    q.set_defaults(func=cmd_publishers_allow)

    p = sub.add_parser("owners", parents=[common], help="operator: show or set the keys that own an extension id")
    p.add_argument("ext_id", help="extension id")
    p.add_argument("--set", nargs="+", metavar="PUBLIC_KEY", help="give the id to exactly these keys")
    p.set_defaults(func=cmd_owners)

    p = sub.add_parser("acl", help="operator: Redis ACL users for producers and workers (an ACL file or server args)")
    p.add_argument("--format", choices=("file", "args"), default="file",
                   help="an aclfile for redis.conf (default) or redis-server command-line arguments")
    p.add_argument("--producer-password", default=os.environ.get("REDIS_PRODUCER_PASSWORD"),
                   help="the producer user's password (default: $REDIS_PRODUCER_PASSWORD)")
    p.add_argument("--worker-password", default=os.environ.get("REDIS_WORKER_PASSWORD"),
                   help="the worker user's password (default: $REDIS_WORKER_PASSWORD)")
    p.add_argument("--admin-password", default=os.environ.get("REDIS_PASSWORD"),
                   help="the operator's (default user's) password, for --format file (default: $REDIS_PASSWORD)")
    p.set_defaults(func=cmd_acl)

    p = sub.add_parser("tenants", help="operator: tenant tokens (needs $WASMJOB_TENANT_SECRET)")
    psub = p.add_subparsers(dest="tenants_command", required=True)
    q = psub.add_parser("token", help="print the token a tenant's submitters pass as tenant_token")
    q.add_argument("tenant", help="tenant (library) UUID")
    q.set_defaults(func=cmd_tenant_token)


def cmd_publisher(args: argparse.Namespace) -> int:
    from .publishers import PublisherKey, default_key_path, load_or_create

    if args.action == "init":
        key = PublisherKey.generate().save(args.key or default_key_path())
        print(f"created {key.path}: keep it private; every version you publish is signed with it", file=sys.stderr)
    else:
        key = load_or_create(args.key)
    print(f"{key.id}  {key.public}")
    return 0


def cmd_publishers_list(args: argparse.Namespace) -> int:
    from .publishers import key_id

    for public, name in sorted(_registry(args).publishers().items(), key=lambda kv: kv[1]):
        print(f"{name}  {key_id(public)}  {public}")
    return 0


def cmd_publishers_allow(args: argparse.Namespace) -> int:
    _registry(args).allow_publisher(args.public_key.strip(), args.name)
    print(f"publisher {args.name} may claim new extension ids")
    return 0


def cmd_owners(args: argparse.Namespace) -> int:
    from .publishers import key_id

    registry = _registry(args)
    if args.set:
        registry.set_owners(args.ext_id, [k.strip() for k in args.set])
    for public in registry.owners(args.ext_id):
        print(f"{key_id(public)}  {public}")
    return 0


def cmd_tenant_token(args: argparse.Namespace) -> int:
    from .client import _uuid
    from .tenants import token_for

    secret = os.environ.get("WASMJOB_TENANT_SECRET")
    if not secret:
        raise ConfigError("WASMJOB_TENANT_SECRET is not set: tenant tokens come from the fleet's secret")
    print(token_for(secret, _uuid(args.tenant, "tenant")))
    return 0


def cmd_acl(args: argparse.Namespace) -> int:
    import shlex

    from wasmjob.broker_config import Settings
    from wasmjob.broker_config.acl import acl_file, fleet_users, server_args

    needed = [("--producer-password", args.producer_password), ("--worker-password", args.worker_password)]
    if args.format == "file":
        needed.append(("--admin-password", args.admin_password))
    for flag, value in needed:
        if not value or len(value) < 12:
            raise ConfigError(f"{flag} must be given (or its environment variable set), at least 12 characters")
    users = fleet_users(Settings.from_env(), producer_password=args.producer_password,
                        worker_password=args.worker_password)
    if args.format == "file":
        sys.stdout.write(acl_file(users, admin_password=args.admin_password))
    else:
        print(" ".join(shlex.quote(a) for a in server_args(users)))
    return 0


def _registry(args: argparse.Namespace) -> Any:
    from wasmjob.broker_config import Settings

    from .fleet.context import Fleet

    return Fleet(Settings.from_env(redis_url=getattr(args, "redis_url", None))).registry
