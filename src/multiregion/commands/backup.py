"""``multiregion backup | restore | verify | backups list | prune | test-restore``.

Every command reads the deployment spec given by ``--config`` and uses its store and bucket;
backups live under ``backups/`` in the bucket (``multiregion.backup``), encrypted on the client
when ``$MULTIREGION_BACKUP_KEY`` holds an envelope key. A damaged backup is
listed as damaged (and warned about on stderr) without hiding the others.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import attrs
from rich.console import Console
from rich.table import Table

from multiregion.backup import (
    ORPHAN_GRACE_S,
    RESTORE_TEST_MAX_AGE_S,
    Backups,
    Inventory,
    Manifest,
    scratch_store,
)
from multiregion.backup_encryption import key_from_env
from multiregion.commands import output
from multiregion.commands.output import add_json
from multiregion.commands.progress import meter, waiting
from multiregion.deployment import Deployment
from multiregion.errors import InvalidInput, MultiregionError


def register(commands: argparse._SubParsersAction[Any]) -> None:
    backup = commands.add_parser(
        "backup",
        help="back up the deployment's store into its bucket",
        description="Snapshot the store of the deployment into its bucket, full or incremental.",
    )
    _config(backup)
    backup.add_argument(
        "--incremental-from",
        metavar="BACKUP_ID",
        help="write only what changed since that backup (full backup otherwise)",
    )
    add_json(backup, "the new backup's manifest")
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
    restore.add_argument("backup_id", metavar="BACKUP_ID", help="the backup to restore")
    add_json(restore, "what was restored")
    restore.add_argument(
        "--into-region",
        metavar="REGION",
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
    verify.add_argument("backup_id", metavar="BACKUP_ID", help="the backup to verify")
    add_json(verify, "the verdict")
    verify.set_defaults(handler=run_verify)

    backups = commands.add_parser("backups", help="list the backups in the bucket")
    actions = backups.add_subparsers(dest="backups_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="complete backups, oldest first")
    _config(listing)
    add_json(listing, "the backups", as_list=True)
    listing.set_defaults(handler=run_list)

    prune = actions.add_parser(
        "prune",
        help="delete old backups and the leftovers of killed ones",
        description=(
            "Delete backups beyond the newest --keep-last and/or older than --older-than (never "
            "one a kept incremental needs), and backup folders without a manifest whose newest "
            "object is older than --orphan-grace. Damaged backups are reported and kept."
        ),
    )
    _config(prune)
    prune.add_argument("--keep-last", type=int, metavar="N", help="keep the newest N backups")
    prune.add_argument(
        "--older-than", type=float, metavar="SECONDS", help="delete backups older than this"
    )
    prune.add_argument(
        "--orphan-grace",
        type=float,
        metavar="SECONDS",
        default=ORPHAN_GRACE_S,
        help=f"age before a folder without manifest is removed (default {ORPHAN_GRACE_S:g})",
    )
    add_json(prune, "the deleted ids", as_list=True)
    prune.set_defaults(handler=run_prune)

    test = actions.add_parser(
        "test-restore",
        help="restore the latest backup into a scratch store and record it as verified",
        description=(
            "Restore the latest backup (or BACKUP_ID) into an empty local store in a temporary "
            "directory, check every item, the content digest and a sentinel item, and record "
            "the time as the last verified restore (multiregion status warns when it gets "
            "older than --max-age)."
        ),
    )
    _config(test)
    test.add_argument(
        "--backup-id", metavar="BACKUP_ID", help="the backup to test (default: latest)"
    )
    test.add_argument("--sentinel", metavar="KEY", help="an item that must be restored")
    test.add_argument(
        "--max-age",
        type=float,
        metavar="SECONDS",
        default=RESTORE_TEST_MAX_AGE_S,
        help=f"how old this test may get before status warns (default {RESTORE_TEST_MAX_AGE_S:g})",
    )
    add_json(test, "the restore test's record")
    test.set_defaults(handler=run_test_restore)


def _backups(deployment: Deployment) -> Backups:
    """The deployment's backups, sealed with the envelope key of $MULTIREGION_BACKUP_KEY if
    set (``multiregion.backup_encryption``)."""
    return Backups(deployment.bucket, encryption=key_from_env())


def _config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, metavar="FILE", help="the deployment spec (TOML)"
    )


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def run_backup(args: argparse.Namespace) -> int:
    with Deployment.from_file(args.config) as deployment:
        backups = _backups(deployment)
        started = time.perf_counter()
        with meter(output.console(stderr=True), "backing up") as advance:
            manifest = backups.create(
                deployment.store,
                incremental_from=args.incremental_from,
                progress=advance,
                source={"deployment": deployment.spec.name},
            )
        elapsed = time.perf_counter() - started
    output.emit(
        args,
        {**_row(manifest), "elapsed_s": elapsed},
        f"backup {manifest.backup_id}: {manifest.kind}, {manifest.item_count} items "
        f"({manifest.changed} written, {manifest.deleted} deleted) in {elapsed:.1f} s",
    )
    return 0


def run_restore(args: argparse.Namespace) -> int:
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
        backups = _backups(deployment)
        total = sum(m.changed for m in backups.chain(args.backup_id))
        with meter(output.console(stderr=True), f"restoring into {region}", total) as advance:
            # The fence refuses the writes if a failover promotes another region meanwhile.
            count = backups.restore(args.backup_id, store, fence=fence, progress=advance)
    data = {"backup_id": args.backup_id, "region": region, "items": count}
    output.emit(args, data, f"restored backup {args.backup_id} into {region}: {count} items")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    with Deployment.from_file(args.config) as deployment, scratch_store() as scratch:
        backups = _backups(deployment)
        with waiting(f"verifying {args.backup_id}"):
            count = backups.verify(args.backup_id, scratch)
    output.emit(
        args,
        {"backup_id": args.backup_id, "verified": True, "items": count},
        f"backup {args.backup_id} verified: {count} items restored and identical",
    )
    return 0


def run_test_restore(args: argparse.Namespace) -> int:
    console = _console()
    with Deployment.from_file(args.config) as deployment, scratch_store() as scratch:
        backups = _backups(deployment)
        with waiting("restoring the latest backup into a scratch store"):
            record = backups.test_restore(
                scratch, backup_id=args.backup_id, sentinel=args.sentinel, max_age_s=args.max_age
            )
    if args.json:
        print(json.dumps(attrs.asdict(record)))
        return 0
    console.print(
        f"backup {record.backup_id} restored and verified: {record.item_count} items "
        f"in {record.seconds:.1f} s; recorded as the last verified restore"
    )
    return 0


def restore_test_warning(deployment: Deployment, now: float | None = None) -> str | None:
    """What ``status`` warns about the last verified restore: None when it is recent enough (or
    the deployment has no bucket or no backup yet), else one line saying why."""
    if not deployment.spec.settings.get("bucket"):
        return None
    try:
        backups = _backups(deployment)
        record = backups.last_verified()
        if record is None:
            if not backups.list():
                return None
            return "no restore test recorded: run multiregion backups test-restore"
    except MultiregionError as exc:
        return f"restore tests unreadable: {exc}"
    if not record.overdue(now):
        return None
    return (
        f"last verified restore (backup {record.backup_id}) is {record.age_s(now) / 3600:.1f} h "
        f"old, over the {record.max_age_s / 3600:g} h policy: run multiregion backups test-restore"
    )


def _warn_damaged(found: Inventory) -> None:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for damaged in found.damaged:
        err.print(f"warning: backup {damaged.backup_id} is damaged and skipped: {damaged.reason}")


def run_prune(args: argparse.Namespace) -> int:
    with Deployment.from_file(args.config) as deployment:
        backups = _backups(deployment)
        _warn_damaged(backups.inventory())
        deleted = backups.prune(
            keep_last=args.keep_last,
            older_than_s=args.older_than,
            orphan_grace_s=args.orphan_grace,
        )
    if args.json:
        print(json.dumps(deleted))
        return 0
    console = _console()
    console.print(f"deleted {len(deleted)} backup(s)" + "".join(f"\n  {d}" for d in deleted))
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
        found = _backups(deployment).inventory()
    manifests = found.backups
    _warn_damaged(found)
    if args.json:
        damaged = [{"backup_id": d.backup_id, "damaged": d.reason} for d in found.damaged]
        print(json.dumps([*(_row(m) for m in manifests), *damaged]))
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
    for d in found.damaged:
        table.add_row(d.backup_id, "DAMAGED", "", "", "", "", "")
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
