"""`reelforge serve` and `reelforge keys`: the same Settings, database and app the server uses.
(`users`, `audit`, `reports` and `policy` are in governance_cli.py.)"""
from __future__ import annotations

import getpass
from contextlib import contextmanager

import click

from .rights import ROLES


def fail(message: str) -> None:
    # Imported when called: reelforge.cli imports this module, and `python -m reelforge.cli` would
    # otherwise import the two in a circle.
    from ..cli import fail as cli_fail
    cli_fail(message)


def _settings(**overrides):
    from .config import ConfigError, Settings
    try:
        return Settings.from_env(**overrides)
    except ConfigError as e:
        fail(str(e))


def sessions():
    """The server's database (created or upgraded first), as the server itself opens it."""
    from sqlalchemy.exc import OperationalError

    from .db import make_engine, make_sessionmaker
    path = _settings().database_path
    try:
        return make_sessionmaker(make_engine(path))
    except (OSError, OperationalError) as e:
        fail(f"cannot open the database {str(path)!r} (set REELFORGE_HOME): {str(e).splitlines()[0]}")


def actor() -> str:
    """Who the audit log names for a command run on the server's machine."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "cli"


@contextmanager
def one_line_errors():
    """The API's errors (the same functions raise them) as `error: ...` and exit status 2."""
    from .errors import ApiError
    try:
        yield
    except ApiError as e:
        fail(e.message)


@click.command()
@click.option("--host", default=None, help="Address to bind [default: 127.0.0.1, or REELFORGE_HOST].")
@click.option("--port", type=int, default=None, help="Port [default: 8000, or REELFORGE_PORT].")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Generation threads [default: 1, or REELFORGE_WORKERS].")
@click.option("--model", "model_dir", default=None, type=click.Path(),
              help="A model directory [default: the built-in model, or REELFORGE_MODEL_DIR].")
def serve(host, port, workers, model_dir):
    """Serve OpenAI's Videos API on http://127.0.0.1:8000/v1 (state in REELFORGE_HOME)."""
    import copy
    from pathlib import Path

    import uvicorn
    from sqlalchemy.exc import OperationalError

    from ..pipeline import CheckpointError
    from .app import create_app
    from .config import ConfigError
    settings = _settings(host=host, port=port, workers=workers, model_dir=Path(model_dir) if model_dir else None)
    try:
        app = create_app(settings)
    except (CheckpointError, ConfigError) as e:
        fail(str(e))
    except (OSError, OperationalError) as e:
        fail(f"cannot use REELFORGE_HOME {str(settings.home)!r}: {str(e).splitlines()[0]}")
    # uvicorn's dictConfig replaces the root handlers, so our loggers join its configuration instead.
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["reelforge"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    click.echo(f"ReelForge serving model {app.state.catalog.config.name!r} on http://{settings.host}:{settings.port}/v1 "
               f"(state in {settings.home})", err=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", log_config=log_config)


@click.group()
def keys():
    """Create, list and revoke API keys (every API call needs one)."""


@keys.command("create")
@click.option("--user", "user_name", required=True, help="The user the key belongs to (created if new).")
@click.option("--role", type=click.Choice(ROLES), default=None,
              help="Set the user's role (see `reelforge users --help`) [default: creator for a new user].")
def keys_create(user_name, role):
    """Make a key for USER and print it once; only its hash is stored."""
    from . import accounts, crud
    with one_line_errors():
        accounts.check_name(user_name)
    with sessions()() as session:
        key, plaintext = crud.create_key(session, user_name, role, actor=actor())
    click.echo(plaintext)
    click.echo(f"key {key.id} for user {user_name!r}; it is shown only now, store it safely", err=True)


@keys.command("list")
def keys_list():
    """Every key: id, shown prefix, user, role, created, last used, revoked."""
    import datetime

    from . import crud

    def when(t):
        return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t else "-"

    with sessions()() as session:
        rows = crud.list_keys(session)
    click.echo(f"{'id':>4}  {'key':<13} {'user':<20} {'role':<8} {'created':<16}  {'last used':<16}  revoked")
    for key, user in rows:
        click.echo(f"{key.id:>4}  {key.prefix + '...':<13} {user.name:<20} {user.role:<8} {when(key.created_at):<16}"
                   f"  {when(key.last_used_at):<16}  {when(key.revoked_at)}")


@keys.command("revoke")
@click.argument("key", required=False)
@click.option("--all", "everything", is_flag=True,
              help="The kill switch: revoke every key at once and cancel every queued or running job.")
@click.option("--reason", default=None, help="Recorded in the audit log with --all.")
def keys_revoke(key, everything, reason):
    """Revoke KEY (its id from `reelforge keys list`, its shown prefix, or the whole key), or --all."""
    from . import accounts, crud
    if everything == (key is not None):
        fail("give one KEY to revoke, or --all to revoke every key")
    if everything:
        with sessions()() as session, one_line_errors():
            revoked, cancelled = accounts.revoke_all_keys(session, actor(), reason)
        click.echo(f"revoked {revoked} keys and cancelled {len(cancelled)} jobs; make new keys with "
                   "`reelforge keys create --user NAME`")
        return
    with sessions()() as session:
        revoked = crud.revoke_key(session, key, actor=actor())
    if revoked is None:
        fail(f"no key {key!r}; give an id or prefix from `reelforge keys list`")
    click.echo(f"revoked key {revoked.id} ({revoked.prefix}...)")
