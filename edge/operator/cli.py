"""`edge-gateway alerts ...` and `edge-gateway tasks ...`: the operator's commands over SSH.

They talk to the running daemon's API (never to the buffer file): `list`, `show ID`, and
`decide ID ACTION` (with the operator token from `http.operator_token`), so a decision from
the command line takes the same path as one from the operator page or MQTT.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime
from typing import Any

import httpx

from edge.maintenance.alerts import ALERT_FILTERS
from edge.maintenance.decisions import ACTIONS
from edge.maintenance.tasks import TASK_FILTERS
from edge.settings import Settings

EXIT_FAILURE = 1
FILTERS = {"alert": ALERT_FILTERS, "task": TASK_FILTERS}


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register `alerts` and `tasks` on the CLI's subcommands."""
    for kind in ("alert", "task"):
        parser = commands.add_parser(f"{kind}s", help=f"list, show and decide about {kind}s "
                                                      "(through the running daemon)")
        verbs = parser.add_subparsers(dest="verb", required=True)
        listing = verbs.add_parser("list", parents=[common], help=f"the latest {kind}s")
        listing.add_argument("--state", default=None, choices=list(FILTERS[kind]),
                             help="a state, or active (still to be dealt with)")
        listing.add_argument("--limit", type=int, default=20)
        listing.add_argument("--json", action="store_true")
        show = verbs.add_parser("show", parents=[common], help=f"one {kind} and its decisions")
        show.add_argument("id")
        show.add_argument("--json", action="store_true")
        article = "an" if kind[0] in "aeiou" else "a"
        decide = verbs.add_parser("decide", parents=[common], help=f"decide about {article} {kind}")
        decide.add_argument("id")
        decide.add_argument("action", choices=ACTIONS[kind])
        decide.add_argument("--actor", default=getpass.getuser())
        decide.add_argument("--note", default="")
        decide.add_argument("--decision-id", default=None, help="idempotency key (default: new)")
        if kind == "alert":
            decide.add_argument("--until", default=None, type=_aware_time,
                                help="snooze: RFC 3339 end with a UTC offset (e.g. ...T08:00Z)")
            decide.add_argument("--reason", default=None, help="false_alarm / close: why")
        else:
            decide.add_argument("--assignee", default=None)
            decide.add_argument("--reason", default=None, help="cancel: why")
            decide.add_argument("--fault-found", action=argparse.BooleanOptionalAction, default=None)
            decide.add_argument("--parts", default=None, help="comma-separated")
            decide.add_argument("--labour-h", type=float, default=None)


def _aware_time(text: str) -> str:
    """An RFC 3339 time with a UTC offset (refused here, before it reaches the daemon)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} needs a UTC offset (e.g. {text}Z or {text}+01:00)")
    return moment.isoformat()


def run(settings: Settings, kind: str, args: argparse.Namespace) -> int:
    api = _Api(settings)
    try:
        if args.verb == "list":
            query = f"?limit={args.limit}" + (f"&state={args.state}" if args.state else "")
            return _print(api.get(f"/api/v1/{kind}s{query}"), args.json, _rows)
        if args.verb == "show":
            return _print(api.get(f"/api/v1/{kind}s/{args.id}"), args.json, _detail)
        return _decide(api, kind, args)
    except httpx.HTTPError as exc:
        status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
        if status in (401, 403):
            print(f"{kind}s: the daemon at {api.base} refused the request ({status}): "
                  f"{'the token' if api.has_token else 'no token'} in this command's config "
                  "is not accepted; give it the daemon's config, with http.operator_token "
                  "(or http.read_token to read)", file=sys.stderr)
        elif isinstance(exc, httpx.HTTPStatusError):
            print(f"{kind}s: the daemon answered {exc.response.status_code}: "
                  f"{exc.response.text[:300]}", file=sys.stderr)
        else:
            print(f"{kind}s: the daemon is not reachable at {api.base}: {exc} (decisions go "
                  "through the running daemon)", file=sys.stderr)
        return EXIT_FAILURE


def _decide(api: _Api, kind: str, args: argparse.Namespace) -> int:
    params = {k: v for k, v in {
        "until": getattr(args, "until", None), "reason": args.reason,
        "assignee": getattr(args, "assignee", None), "fault_found": getattr(args, "fault_found", None),
        "parts": args.parts.split(",") if getattr(args, "parts", None) else None,
        "labour_h": getattr(args, "labour_h", None)}.items() if v is not None}
    body = {"action": args.action, "actor": args.actor, "note": args.note, "params": params,
            **({"decision_id": args.decision_id} if args.decision_id else {})}
    response = api.post(f"/api/v1/{kind}s/{args.id}/decisions", body)
    answer = response.json()
    if response.status_code >= 400:
        allowed = answer.get("allowed_actions")
        print(f"{args.action} refused ({response.status_code}): {_why(answer)}"
              + (f"; allowed now: {', '.join(allowed)}" if allowed else ""), file=sys.stderr)
        return EXIT_FAILURE
    print(f"{answer['status']}: {answer['decision']['outcome_detail']} "
          f"(decision {answer['decision']['decision_id']})")
    return 0


def _why(answer: dict[str, Any]) -> str:
    """The reason in a refusal: ours (`detail` or the decision's outcome), or FastAPI's list."""
    detail = answer.get("detail")
    if isinstance(detail, list):  # request validation: [{"loc": [...], "msg": ...}]
        return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', [])[1:])}: {e.get('msg')}"
                         for e in detail if isinstance(e, dict))
    return str(detail or answer.get("decision", {}).get("outcome_detail") or "")


class _Api:
    def __init__(self, settings: Settings) -> None:
        http = settings.http
        host = "127.0.0.1" if http.host in ("0.0.0.0", "::") else http.host
        self.base = f"http://{host}:{http.port}"
        token = http.operator_token or http.token or http.read_token
        self._headers = {"authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        self.has_token = token is not None
        self._operator = {"authorization": f"Bearer {http.operator_token.get_secret_value()}"} \
            if http.operator_token else {}

    def get(self, path: str) -> Any:
        response = httpx.get(self.base + path, headers=self._headers, timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        if not self._operator:
            raise SystemExit("decide: set http.operator_token (or operator_token_file) in the config")
        return httpx.post(self.base + path, headers={**self._operator, "x-edge-client": "cli"},
                          json=body, timeout=30)


def _print(data: Any, as_json: bool, render: Any) -> int:
    print(json.dumps(data, indent=2) if as_json else render(data))
    return 0


def _rows(items: list[dict[str, Any]]) -> str:
    lines = []
    for item in items:
        ident = item.get("alert_id") or item.get("task_id")
        what = item.get("reason") or item.get("description", "")
        lines.append(f"{ident}  {item['state']:<12} {item.get('severity') or item.get('priority'):<8} "
                     f"{item.get('sensor_id') or item.get('asset_id') or '-':<24} {what[:70]}")
    return "\n".join(lines) or "(none)"


def _detail(detail: dict[str, Any]) -> str:
    item = detail.get("alert") or detail.get("task") or {}
    lines = [f"{key:<14}: {value}" for key, value in item.items() if key != "details"]
    lines.append(f"{'allowed now':<14}: {', '.join(detail['allowed_actions']) or '-'}")
    for decision in detail["decisions"]:
        lines.append(f"  {decision['received_at']}  {decision['action']:<16} {decision['actor']:<12} "
                     f"{decision['outcome']}: {decision['outcome_detail']}")
    return "\n".join(lines)
