"""``multiregion backup | restore | verify | backups list``: backups of a deployment's store.

Every command reads the deployment spec given by ``--config`` and uses its store and bucket;
backups live under ``backups/`` in the bucket (``multiregion.backup``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from multiregion import registry
from multiregion.backup import Backups, Manifest
from multiregion.commands.progress import meter
from multiregion.deployment import Deployment
from multiregion.errors import InvalidInput

SCRATCH_REGION = "scratch"


def register(commands: argparse._SubParsersAction[Any]) -> None:
    backup = commands.add_parser(
        "backup",
        help="back up the deployment's store into its bucket",
        description="Snapshot the store of the deployment into its bucket, full or incremental.",
    )
    _config(backup)
    backup.add_argument(
        "--incremental-from",
        metavar="ID",
        help="write only what changed since backup ID (full backup otherwise)",
    )
    backup.set_defaults(handler=run_backup)

    restore = commands.add_parser(
        "restore",
        help="write a backup's items into the deployment's store",
        description=(
            "Check every object of the backup and the backups it builds on, then write its "
            "items into the store; a damaged backup writes nothing."
        ),
    )
    _config(restore)
    restore.add_argument("backup_id", metavar="BACKUP_ID")
    restore.add_argument(
        "--into-region",
        metavar="R",
        help="the region to restore into; must be the store's write region (promote it first)",
    )
    restore.set_defaults(handler=run_restore)

    verify = commands.add_parser(
        "verify",
        help="restore a backup into a scratch store and compare it with its index",
        description=(
            "Restore the backup into an empty local store in a temporary directory and compare "
            "every item with the backup's index. The deployment's store is not touched."
        ),
    )
    _config(verify)
    verify.add_argument("backup_id", metavar="BACKUP_ID")
    verify.set_defaults(handler=run_verify)

    backups = commands.add_parser("backups", help="list the backups in the bucket")
    actions = backups.add_subparsers(dest="backups_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="complete backups, oldest first")
    _config(listing)
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(handler=run_list)


def _config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, metavar="FILE", help="the deployment spec (TOML)"
    )


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def run_backup(args: argparse.Namespace) -> int:
    console = _console()
    with Deployment.from_file(args.config) as deployment:
        backups = Backups(deployment.bucket)
        started = time.perf_counter()
        with meter(console, "backing up") as advance:
            manifest = backups.create(
                deployment.store,
                incremental_from=args.incremental_from,
                progress=advance,
                source={"deployment": deployment.spec.name},
            )
        elapsed = time.perf_counter() - started
    console.print(
        f"backup {manifest.backup_id}: {manifest.kind}, {manifest.item_count} items "
        f"({manifest.changed} written, {manifest.deleted} deleted) in {elapsed:.1f} s"
    )
    return 0


def run_restore(args: argparse.Namespace) -> int:
    console = _console()
    with Deployment.from_file(args.config) as deployment:
        store = deployment.store
        fence = store.fence()
        region = args.into_region or fence.region
        if region not in store.regions:
            raise InvalidInput(
                "--into-region", f"{region!r} is not one of {', '.join(store.regions)}"
            )
        if region != fence.region:
            raise InvalidInput(
                "--into-region",
                f"{region!r} is not the store's write region ({fence.region}); "
                "promote it first or restore into the write region",
            )
        backups = Backups(deployment.bucket)
        total = sum(m.changed for m in backups.chain(args.backup_id))
        with meter(console, f"restoring into {region}", total) as advance:
            # The fence refuses the writes if a failover promotes another region meanwhile.
            count = backups.restore(args.backup_id, store, fence=fence, progress=advance)
    console.print(f"restored backup {args.backup_id} into {region}: {count} items")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    console = _console()
    with (
        Deployment.from_file(args.config) as deployment,
        tempfile.TemporaryDirectory(prefix="multiregion-verify-") as scratch_dir,
        # Through the registry: the command speaks only the interfaces.
        contextlib.closing(
            registry.store("local", path=scratch_dir, regions=[SCRATCH_REGION], replicate=False)
        ) as scratch,
    ):
        backups = Backups(deployment.bucket)
        waiting = (
            console.status(f"verifying {args.backup_id}")
            if console.is_terminal
            else contextlib.nullcontext()
        )
        with waiting:
            count = backups.verify(args.backup_id, scratch)
    console.print(f"backup {args.backup_id} verified: {count} items restored and identical")
    return 0


def _row(manifest: Manifest) -> dict[str, Any]:
    return {
        "backup_id": manifest.backup_id,
        "kind": manifest.kind,
        "created_at": manifest.created_at,
        "item_count": manifest.item_count,
        "changed": manifest.changed,
        "deleted": manifest.deleted,
        "base": manifest.base,
    }


def run_list(args: argparse.Namespace) -> int:
    with Deployment.from_file(args.config) as deployment:
        manifests = Backups(deployment.bucket).list()
    if args.json:
        print(json.dumps([_row(m) for m in manifests]))
        return 0
    console = _console()
    if not manifests:
        console.print("no backups")
        return 0
    table = Table()
    for header in ("backup", "kind", "created (UTC)"):
        table.add_column(header, no_wrap=True)
    for header in ("items", "written", "deleted"):
        table.add_column(header, justify="right")
    table.add_column("base", no_wrap=True)
    for m in manifests:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(m.created_at))
        table.add_row(
            m.backup_id,
            m.kind,
            created,
            str(m.item_count),
            str(m.changed),
            str(m.deleted),
            m.base or "",
        )
    if not console.is_terminal:  # a pipe or a log: keep rows whole rather than fold at 80
        console.width = 200
    console.print(table)
    return 0
