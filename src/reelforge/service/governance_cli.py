"""`reelforge users`, `audit`, `reports` and `policy`: governance from the server's own machine, through
the same functions as the admin API, audited as `cli:<login>`. The first admin is made here:
`reelforge users create admin --role admin`, then `reelforge keys create --user admin`."""
from __future__ import annotations

import click

from .cli import actor, fail, one_line_errors, sessions
from .rights import ROLES


class LimitType(click.ParamType):
    """An integer >= 0 (0: no limit), or `default` for the deployment's setting."""
    name = "N|default"

    def convert(self, value, param, ctx):
        if value is None or value == "default":
            return "default"
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = -1
        if number < 0:
            self.fail(f"{value!r} is not an integer >= 0 or 'default'", param, ctx)
        return number


def _write(text: str, output: str | None, what: str) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    except OSError as e:
        fail(f"cannot write {output!r}: {e.strerror or e}")
    click.echo(f"wrote {what} to {output}", err=True)


# users ------------------------------------------------------------------------------------------

@click.group()
def users():
    """Users and their roles: admin, reviewer, creator, tester (red team), viewer."""


@users.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the user may do.")
@click.option("--publisher", is_flag=True, help="May publish without review (a creator or tester role).")
def users_create(name, role, publisher):
    """Create user NAME with a role; then `reelforge keys create --user NAME` gives them a key."""
    from . import accounts
    with sessions()() as session, one_line_errors():
        user = accounts.create_user(session, name, role, actor(), publisher)
    click.echo(f"created user {user.name!r} with role {user.role}"
               + (" and the publisher right" if user.publisher else ""))


@users.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (one line), for scripts.")
def users_set_password(name, password_stdin):
    """Let user NAME sign in to the web studio with a password (asked for twice unless --password-stdin).
    Their browsers that are signed in now are signed out."""
    from . import logins
    if password_stdin:
        password = click.get_text_stream("stdin").readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with sessions()() as session, one_line_errors():
        logins.set_password(session, name, password, actor())
    click.echo(f"set the password of user {name!r}; they can sign in at /signin")


@users.command("list")
def users_list():
    """Every user: role, publisher right, suspension, own limits."""
    from . import accounts
    with sessions()() as session:
        rows = accounts.list_users(session)
    click.echo(f"{'user':<20} {'role':<9} {'publisher':<9} {'suspended':<9} limits (videos/day, s/day, per minute)")
    for u in rows:
        limits = "/".join("-" if v is None else str(v) for v in (u.videos_per_day, u.seconds_per_day,
                                                                  u.create_per_minute))
        click.echo(f"{u.name:<20} {u.role:<9} {'yes' if u.publisher else 'no':<9} "
                   f"{'yes' if u.suspended_at else 'no':<9} {limits}")


def _change(name: str, change) -> None:
    from . import accounts
    with sessions()() as session, one_line_errors():
        user = accounts.update_user(session, name, change, actor())
    click.echo(f"user {user.name!r}: role {user.role}, publisher {'yes' if user.publisher else 'no'}")


@users.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
def users_set_role(name, role):
    """Give user NAME a new role; it applies to their next request."""
    from .accounts import UserChange
    _change(name, UserChange(role=role))


@users.command("set-publisher")
@click.argument("name")
@click.argument("value", type=click.Choice(["yes", "no"]))
def users_set_publisher(name, value):
    """Grant (yes) or take away (no) the right to publish without review."""
    from .accounts import UserChange
    _change(name, UserChange(publisher=value == "yes"))


@users.command("set-limits")
@click.argument("name")
@click.option("--videos-per-day", type=LimitType(), default=None)
@click.option("--seconds-per-day", type=LimitType(), default=None)
@click.option("--per-minute", "create_per_minute", type=LimitType(), default=None)
def users_set_limits(name, **limits):
    """Set NAME's own quotas: a number (0: no limit) or `default` (the deployment's REELFORGE_* setting)."""
    from .accounts import UserChange
    given = {k: (None if v == "default" else v) for k, v in limits.items() if v is not None}
    if not given:
        fail("give at least one of --videos-per-day, --seconds-per-day, --per-minute")
    _change(name, UserChange(limits=given))


def _group(session, names, role):
    from . import accounts
    if bool(names) == (role is not None):
        fail("give user names, or --role ROLE for everyone with that role")
    with one_line_errors():
        return accounts.users_named(session, list(names)) if names else accounts.users_with_role(session, role)


@users.command("suspend")
@click.argument("names", nargs=-1)
@click.option("--role", type=click.Choice(ROLES), default=None, help="Everyone with this role.")
@click.option("--reason", default=None, help="Recorded in the audit log and shown to admins.")
def users_suspend(names, role, reason):
    """Suspend users: their keys fail with 401 from the next request; their jobs are cancelled."""
    from . import accounts
    with sessions()() as session:
        group = _group(session, names, role)
        with one_line_errors():
            cancelled = accounts.suspend(session, group, actor(), reason)
    click.echo(f"suspended {', '.join(u.name for u in group) or 'nobody'}; cancelled {len(cancelled)} jobs")


@users.command("unsuspend")
@click.argument("names", nargs=-1)
@click.option("--role", type=click.Choice(ROLES), default=None, help="Everyone with this role.")
def users_unsuspend(names, role):
    """Lift a suspension: the users' keys work again (cancelled jobs stay cancelled)."""
    from . import accounts
    with sessions()() as session:
        group = _group(session, names, role)
        accounts.unsuspend(session, group, actor())
    click.echo(f"unsuspended {', '.join(u.name for u in group) or 'nobody'}")


# audit and reports ------------------------------------------------------------------------------

FORMAT = click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
OUTPUT = click.option("-o", "--output", default=None, help="A file [default: standard output].")


@click.group()
def audit():
    """The append-only log of sensitive actions."""


@audit.command("export")
@FORMAT
@OUTPUT
def audit_export(fmt, output):
    """Every entry, oldest first: id, time, actor, action, target, detail."""
    from . import audit as log, export
    with sessions()() as session:
        rows = log.entries(session)
    _write(export.render(rows, log.COLUMNS, fmt), output, f"{len(rows)} entries")


@click.group()
def reports():
    """Red-team reports: export for training and evaluation, credits by name."""


@reports.command("export")
@FORMAT
@OUTPUT
def reports_export(fmt, output):
    """Every report with the video's prompt, model and seed, oldest first."""
    from . import export
    from . import reports as found
    with sessions()() as session:
        rows = found.export_rows(session)
    _write(export.render(rows, found.EXPORT_COLUMNS, fmt), output, f"{len(rows)} reports")


@reports.command("credits")
def reports_credits():
    """Accepted findings per reporter, most first."""
    from . import reports as found
    with sessions()() as session:
        for row in found.credits(session):
            click.echo(f"{row['accepted']:>5}  {row['reporter']}")


# policy -----------------------------------------------------------------------------------------

@click.group()
def policy():
    """The prompt policy: terms and patterns that a prompt must not match (code moderation_blocked)."""


@policy.command("list")
def policy_list():
    """Every rule: id, kind, value, note."""
    from . import policy as rules
    with sessions()() as session:
        for rule in rules.rules(session):
            click.echo(f"{rule.id:>4}  {rule.kind:<8} {rule.value}" + (f"  # {rule.note}" if rule.note else ""))


@policy.command("add")
@click.argument("kind", type=click.Choice(["term", "pattern"]))
@click.argument("value")
@click.option("--note", default=None, help="Why the rule exists, for other admins.")
def policy_add(kind, value, note):
    """Block prompts with a whole-word TERM or a regular-expression PATTERN (both case-insensitive)."""
    from . import policy as rules
    with sessions()() as session, one_line_errors():
        rule = rules.add_rule(session, kind, value, actor(), note)
    click.echo(f"added rule {rule.id}: {rule.kind} {rule.value!r}")


@policy.command("remove")
@click.argument("rule_id", type=int)
def policy_remove(rule_id):
    """Remove rule RULE_ID (from `reelforge policy list`)."""
    from . import policy as rules
    with sessions()() as session, one_line_errors():
        rule = rules.remove_rule(session, rule_id, actor())
    click.echo(f"removed rule {rule.id}: {rule.kind} {rule.value!r}")


@policy.command("check")
@click.argument("prompt")
def policy_check(prompt):
    """Say whether PROMPT would be blocked, and by which rule (exit status 1 if it would)."""
    from . import policy as rules
    with sessions()() as session:
        rule = rules.first_match(session, prompt)
    if rule is None:
        click.echo("allowed")
        return
    click.echo(f"blocked by rule {rule.id}: {rule.kind} {rule.value!r}")
    raise SystemExit(1)
