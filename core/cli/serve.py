"""``scaleplan serve``: the dashboard, in this process.

Streamlit runs in-process (``streamlit.web.bootstrap``), so there is no child process to
leave behind: Streamlit's own SIGTERM/SIGINT handlers stop the server and the command
returns. It is headless unless ``--open`` is given, so it never waits at Streamlit's
first-run e-mail prompt, with or without a terminal. The Streamlit configuration ships as
package data (``scaleplan.streamlit_config/config.toml``) and is applied as flag options, so
it holds whatever the working directory is. Settings reach the app as script arguments.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.resources
import ipaddress
import os
import socket
import sys
import tomllib
from pathlib import Path
from typing import Any

from scaleplan.core import userdata
from scaleplan.core.cli import _common
from scaleplan.core.settings import Settings


def app_script() -> Path:
    """The dashboard's entry script inside the installed package."""
    return Path(str(importlib.resources.files("scaleplan.dashboard").joinpath("app.py")))


LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(address: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, "localhost")."""
    host = address.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


REMOTE_WARNING = (
    "scaleplan: warning: serving on {address}, beyond this machine: anyone who can reach it can use the "
    "dashboard, and scaleplan has no login of its own. Put it behind a reverse proxy with authentication and a "
    "Host allow-list (README, 'Serving a team'), or use Streamlit's OIDC login (st.login)."
)


def _bind_error(address: str, port: int) -> OSError | None:
    """The error binding ``address``:``port`` gives, bound as Streamlit's server binds it (IPv6 for an
    address with ':', dual-stack, SO_REUSEADDR except on Windows), or None (the socket is closed at once)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        sock = socket.socket(family=family)
    except OSError as error:
        return error
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((address, port))
        sock.listen(1)
    except OSError as error:
        return error
    finally:
        sock.close()
    return None


def port_problem(address: str, port: int) -> str | None:
    """Why the dashboard cannot listen on ``address``:``port``, with what to change; None when it can.

    Checked before anything starts, so a busy port ends the command with this sentence (exit 2)
    instead of Streamlit's own exit 1 after the server began to start.
    """
    error = _bind_error(address, port)
    if error is None:
        return None
    if isinstance(error, socket.gaierror):
        return f"--address {address} is not a name or address this machine has; give e.g. --address 127.0.0.1"
    if error.errno == errno.EADDRINUSE:
        free = next((p for p in range(port + 1, min(port + 50, 65536)) if _bind_error(address, p) is None), None)
        example = f", e.g. --port {free} (free now)" if free is not None else ""
        return (
            f"port {port} on {address} is in use (another scaleplan serve or another program listens there); "
            f"choose another with --port{example}"
        )
    if error.errno == errno.EACCES:
        return f"listening on port {port} needs administrator rights (ports below 1024); choose one with --port, e.g. --port 8501"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"--address {address} is not an address of this machine; give one of its addresses, e.g. 127.0.0.1"
    return f"cannot listen on {address}:{port} ({error.strerror or error}); choose another --port or --address"


def streamlit_options(
    *, port: int, address: str, open_browser: bool, allowed_hosts: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Flag options for Streamlit: the packaged config.toml, then this command's flags."""
    text = importlib.resources.files("scaleplan.streamlit_config").joinpath("config.toml").read_text("utf-8")
    options = {
        f"{section}.{key}": value for section, values in tomllib.loads(text).items() for key, value in values.items()
    }
    options.update(
        {
            "server.port": port,
            "server.address": address,
            "server.headless": not open_browser,
            "browser.gatherUsageStats": False,
            # Streamlit's transport limit (its "MB" is 2**20 bytes) from the one upload limit
            # (core.userdata, 10**6-byte MB): never below it, so scaleplan's own check speaks.
            "server.maxUploadSize": userdata.MAX_UPLOAD_MB,
        }
    )
    if allowed_hosts:
        # Streamlit refuses a websocket whose Host header is not listed (DNS rebinding).
        options["server.allowedHosts"] = list(allowed_hosts)
    return options


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from streamlit import config as streamlit_config
    from streamlit.web import bootstrap

    from scaleplan.core import storage
    from scaleplan.core.manifest import DataSourceError
    from scaleplan.core.storage import DatabaseError

    if not is_loopback(args.address) and not args.allow_remote:
        raise _common.CLIError(
            f"--address {args.address} serves beyond this machine, without a login; add --allow-remote to do so "
            "on purpose (see the README, 'Serving a team'), or use --address 127.0.0.1"
        )
    problem = port_problem(args.address, args.port)
    if problem is not None:
        raise _common.CLIError(problem)
    if storage.database_status(settings.db_path) == "foreign":
        raise DatabaseError(storage.foreign_file_message(settings.db_path))
    if not is_loopback(args.address):
        print(REMOTE_WARNING.format(address=args.address), file=sys.stderr, flush=True)
        if not args.allowed_host:
            print(
                "scaleplan: warning: any Host header is accepted; list the names your team uses with "
                "--allowed-host NAME (repeatable).",
                file=sys.stderr,
                flush=True,
            )
    try:
        _common.ensure_database(settings)
    except (DataSourceError, DatabaseError, OSError) as error:
        # Serve anyway: every page then says what is missing and offers the build, with this reason.
        print(
            f"scaleplan: warning: the database could not be built ({error}); the dashboard will offer "
            "to build it. Give a local copy of the sources with --mirror PATH when offline.",
            file=sys.stderr,
            flush=True,
        )
    script = app_script()
    options = streamlit_options(
        port=args.port, address=args.address, open_browser=args.open, allowed_hosts=tuple(args.allowed_host or ())
    )
    # What `streamlit run` does before bootstrap.run: the main script path anchors Streamlit's
    # config and secrets lookup, then the options are loaded with ours as flags.
    streamlit_config._main_script_path = str(script)
    bootstrap.load_config_options(flag_options=options)
    # Streamlit's "use `streamlit run`" warning is for scripts run bare; this is its server. Its check
    # (inspect.stack(), which maps every frame over ~1,900 loaded modules) cost 0.3 s of the first page.
    from streamlit import delta_generator

    delta_generator._use_warning_has_been_displayed = True
    # The first page's shared work (Plotly's first figure, the database, the calibration) starts now,
    # in a background thread, instead of when someone opens a page. Imported by name: core does not
    # depend on the dashboard's modules (nor does its type check follow them).
    importlib.import_module("scaleplan.dashboard.warmup").start()
    print(
        f"scaleplan dashboard on http://{args.address}:{args.port} (Ctrl+C or SIGTERM to stop)",
        file=sys.stderr,
        flush=True,
    )
    bootstrap.run(str(script), False, settings.as_argv(), options)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", parents=[_common.settings_parent()], help=_common.COMMAND_HELP["serve"])
    serve.add_argument(
        "--port",
        type=_common.number(integer=True, minimum=1, maximum=65535, example="8501"),
        default=8501,
        help="TCP port (default 8501); one in use ends the command at once with exit 2",
    )
    serve.add_argument(
        "--address",
        default="localhost",
        help="address to listen on (default localhost; anything beyond loopback needs --allow-remote)",
    )
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow an --address other machines can reach (there is no login: see the README, 'Serving a team')",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="a Host name the dashboard answers to (repeatable; e.g. scaleplan.example.org); others are refused",
    )
    serve.add_argument("--open", action="store_true", help="open a browser tab (default: headless)")
    serve.add_argument("--headless", action="store_true", help=argparse.SUPPRESS)  # the default; kept for old scripts
    serve.set_defaults(func=cmd_serve)
