"""The `flagctl` command line: parse arguments, pick the credentials, call the client, print the answer."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from flagctl.client import ApiError, AwsAuth, BearerAuth, FlagClient, FlagctlError
from flagctl.rightsize import ENVIRONMENTS, invoke, lambda_client, render
from flagctl.sigv4 import region_of

DEFAULT_URL = "http://127.0.0.1:3000"
EXIT_API_ERROR = 1
EXIT_USAGE = 2


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m flagctl",
        description="List, read, change, kill and revert feature flags (local server or a deployed environment).",
        epilog="Environment: FLAGCTL_URL, FLAGCTL_TOKEN (or ADMIN_TOKEN), FLAGCTL_API_KEY, AWS_PROFILE, AWS_REGION.",
    )
    top.add_argument("--url", default=os.environ.get("FLAGCTL_URL", DEFAULT_URL), help="API base URL, stage included")
    top.add_argument(
        "--token",
        default=os.environ.get("FLAGCTL_TOKEN") or os.environ.get("ADMIN_TOKEN"),
        help="bearer token of the local server (never sent to a deployed API)",
    )
    top.add_argument("--aws", action="store_true", help="sign admin calls with SigV4 (implied by an execute-api URL)")
    top.add_argument("--region", help="AWS region for SigV4 (default: from the URL, then AWS_REGION)")
    top.add_argument("--profile", help="AWS profile for SigV4 (default: the usual credential chain)")
    top.add_argument("--api-key", default=os.environ.get("FLAGCTL_API_KEY"), help="X-API-Key for reads (deployed)")
    top.add_argument("--json", action="store_true", help="print JSON instead of tables")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="every flag: key, enabled, version, updated")
    commands.add_parser("get", help="one flag as the readers see it").add_argument("key")
    put = commands.add_parser("set", help="create or replace a flag from a JSON file ('-' reads stdin)")
    put.add_argument("file")
    kill = commands.add_parser("kill", help="kill switch: PATCH enabled=false")
    kill.add_argument("key")
    revert = commands.add_parser("revert", help="restore an earlier version's definition as a new version")
    revert.add_argument("key")
    revert.add_argument("version", type=int)
    history = commands.add_parser("history", help="the audit trail of one flag, newest first")
    history.add_argument("key")
    history.add_argument("--limit", type=int, default=20)
    commands.add_parser(
        "warm-cache", help="fill the cache reads move to next with every flag (a cache move, docs/operations.md)"
    )
    rightsize = commands.add_parser("rightsize", help="run the cache right-sizing function now, print its advice")
    rightsize.add_argument("--env", required=True, choices=ENVIRONMENTS, help="the environment whose cache to judge")
    for sub in (put, kill, revert):
        sub.add_argument("--if-match", help="only if the flag is at this version (N or *)")
    return top


def auth_for(args: argparse.Namespace) -> BearerAuth | AwsAuth | None:
    """SigV4 for a deployed API (execute-api URL or --aws), else the local bearer token, else none."""
    region = args.region or region_of(args.url) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if args.aws or region_of(args.url):
        if not region:
            raise FlagctlError("SigV4 needs a region: --region or AWS_REGION")
        import botocore.session

        credentials = botocore.session.Session(profile=args.profile).get_credentials()
        if credentials is None:
            raise FlagctlError("no AWS credentials found (AWS_PROFILE, environment, SSO or instance role)")
        return AwsAuth(credentials.get_frozen_credentials(), region)
    return BearerAuth(args.token) if args.token else None


def read_definition(file: str, stdin: TextIO) -> dict[str, Any]:
    text = stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    try:
        definition = json.loads(text)
    except ValueError as error:
        raise FlagctlError(f"{file} is not JSON: {error}") from None
    if not isinstance(definition, dict):
        raise FlagctlError(f"{file} must hold one JSON object (a flag definition)")
    return definition


def table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


def show(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


def run(args: argparse.Namespace, client: FlagClient, out: TextIO, err: TextIO, stdin: TextIO) -> None:
    if args.command == "list":
        flags = list(client.list_flags())
        if args.json:
            return show(flags, out)
        rows = [[f["key"], str(f["enabled"]).lower(), str(f["version"]), f["updatedAt"]] for f in flags]
        return table([["KEY", "ENABLED", "VERSION", "UPDATED"], *rows], out)
    if args.command == "get":
        answer = client.get_flag(args.key)
        err.write(f"X-Cache: {answer.headers.get('x-cache', '-')}\n")
        return show(answer.body, out)
    if args.command == "warm-cache":
        return show(client.warm_cache().body, out)
    if args.command == "history":
        entries = client.history(args.key, limit=args.limit)
        if args.json:
            return show(entries, out)
        rows = [[str(e["version"]), e["action"], e["actor"], e["at"], _enabled(e["after"])] for e in entries]
        return table([["VERSION", "ACTION", "ACTOR", "AT", "ENABLED"], *rows], out)
    answer = _write(args, client, stdin)
    err.write(
        f"{answer.body['key']}: {args.command} accepted, now version {answer.body['version']}, "
        f"enabled={str(answer.body['enabled']).lower()}\n"
    )
    return show(answer.body, out)


def _write(args: argparse.Namespace, client: FlagClient, stdin: TextIO) -> Any:
    if args.command == "set":
        return client.put_flag(read_definition(args.file, stdin), if_match=args.if_match)
    if args.command == "kill":
        return client.kill(args.key, if_match=args.if_match)
    return client.revert(args.key, args.version, if_match=args.if_match)


def rightsize(args: argparse.Namespace, out: TextIO, client: Any) -> int:
    found = invoke(client, args.env)
    if args.json:
        show(found, out)
    else:
        out.write(render(found) + "\n")
    return 0


def _enabled(after: dict[str, Any] | None) -> str:
    return "deleted" if after is None else str(after.get("enabled")).lower()


def main(
    argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr, stdin: TextIO = sys.stdin
) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "rightsize":
            return rightsize(args, out, lambda_client(region=args.region, profile=args.profile))
        client = FlagClient(args.url, auth=auth_for(args), api_key=args.api_key)
        run(args, client, out, err, stdin)
    except ApiError as error:
        err.write(f"flagctl: {error}\n")
        return EXIT_API_ERROR
    except FlagctlError as error:
        err.write(f"flagctl: {error}\n")
        return EXIT_USAGE
    return 0
