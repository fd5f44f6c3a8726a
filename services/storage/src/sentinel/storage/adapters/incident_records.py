"""PostgreSQL adapter of incident-manager's records (tables of migration 0004).

Rows keep the caller's serialized message (`body`) beside indexed columns; this module never
looks inside a body. SQL is built from fixed fragments only: every value travels as a bind
parameter. Times are microseconds since the Unix epoch on this side and timestamptz in the
database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from sentinel.runtime.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
)
from sentinel.storage.adapters.postgres import Database
from sentinel.storage.domain.incidents import (
    OPEN_STATES,
    AlertChange,
    AlertChangeResult,
    AlertChangeStatus,
    AlertFilter,
    AlertRecord,
    Durations,
    IncidentFilter,
    IncidentRecord,
    IncidentState,
    IncidentStats,
    PagePlan,
    PolicyKind,
    PolicyRecord,
    SilenceRecord,
    SilenceState,
    StatsRequest,
    Stored,
    StoredPage,
    TimelineFilter,
    TimelineKind,
    TimelineRecord,
)
from sentinel.storage.domain.query import LabelMatcher, MatchOperator, anchored

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Microseconds since the Unix epoch of a timestamptz expression, exactly (extract is numeric).
_US = "(extract(epoch FROM {0}) * 1000000)::bigint"
_OPEN = "(" + ", ".join(str(int(s)) for s in OPEN_STATES) + ")"
# Timeline to_value of a STATE_CHANGED entry: the IncidentState name (the short form tolerated).
_ACKNOWLEDGED = ["INCIDENT_STATE_ACKNOWLEDGED", "ACKNOWLEDGED"]
_RESOLVED = ["INCIDENT_STATE_RESOLVED", "RESOLVED"]


def _ts(unix_micro: int | None) -> datetime | None:
    return None if unix_micro is None else _EPOCH + timedelta(microseconds=unix_micro)


def _at(unix_micro: int) -> datetime:
    return _EPOCH + timedelta(microseconds=unix_micro)


def _us(value: Any) -> int | None:
    """Microseconds of a Decimal/float/None aggregate, rounded."""
    return None if value is None else round(float(value))


class _Sql:
    """A WHERE clause under construction: conditions and their bind parameters."""

    def __init__(self, *args: Any) -> None:
        self.args: list[Any] = list(args)
        self.where: list[str] = []

    def bind(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, condition: str) -> None:
        self.where.append(condition)

    def labels(self, column: str, matchers: Sequence[LabelMatcher]) -> None:
        """Matchers over a jsonb label column; an absent label compares as ""."""
        for m in matchers:
            if m.operator is MatchOperator.EQUAL and m.value:
                self.add(f"{column} @> {self.bind(json.dumps({m.name: m.value}))}::jsonb")
                continue
            subject = f"coalesce({column} ->> {self.bind(m.name)}, '')"
            if m.operator is MatchOperator.EQUAL:
                self.add(f"{subject} = {self.bind(m.value)}")
            elif m.operator is MatchOperator.NOT_EQUAL:
                self.add(f"{subject} <> {self.bind(m.value)}")
            elif m.operator is MatchOperator.REGEX:
                self.add(f"{subject} ~ {self.bind(anchored(m.value))}")
            else:
                self.add(f"{subject} !~ {self.bind(anchored(m.value))}")

    def range(self, column: str, start_us: int | None, end_us: int | None) -> None:
        if start_us is not None:
            self.add(f"{column} >= {self.bind(_ts(start_us))}")
        if end_us is not None:
            self.add(f"{column} < {self.bind(_ts(end_us))}")

    def any_of(self, column: str, values: Sequence[int]) -> None:
        if values:
            self.add(f"{column} = ANY({self.bind(list(values))}::smallint[])")

    def equal(self, column: str, value: str) -> None:
        if value:
            self.add(f"{column} = {self.bind(value)}")

    @property
    def clause(self) -> str:
        return " AND ".join(self.where)


@contextlib.contextmanager
def _bad_regex_is_invalid(field: str) -> Iterator[None]:
    # Python's `re` validated the syntax; PostgreSQL's engine may still refuse a construct.
    try:
        yield
    except asyncpg.InvalidRegularExpressionError as exc:
        raise InvalidArgumentError(field, f"invalid regular expression: {exc}") from None


def _page(rows: Sequence[Any], page: PagePlan, item: Callable[[Any], Stored]) -> StoredPage:
    """A page from up to size + 1 rows carrying keyset columns k0, k1."""
    token = ""
    if len(rows) > page.size:
        last = rows[page.size - 1]
        token = page.token([last["k0"], last["k1"]])
    return StoredPage(tuple(item(row) for row in rows[: page.size]), token)


def _versioned(row: Any) -> Stored:
    return Stored(bytes(row["body"]), version=row["version"])


def _timed(row: Any) -> Stored:
    return Stored(
        bytes(row["body"]), version=row["version"], create_us=row["create_us"], update_us=row["update_us"]
    )


def _silence(row: Any) -> Stored:
    return Stored(
        bytes(row["body"]),
        create_us=row["create_us"],
        update_us=row["update_us"],
        start_us=row["start_us"],
        end_us=row["end_us"],
    )


_INCIDENT_COLUMNS = (
    "group_key, state, severity, priority, service, model, labels, title, description, assignees, "
    "first_fingerprint, create_time, update_time, acknowledge_time, resolve_time, next_escalation_time, body"
)
_INCIDENT_OUT = (
    f"body, version, {_US.format('create_time')} AS create_us, {_US.format('update_time')} AS update_us"
)
_POLICY_OUT = _INCIDENT_OUT
_SILENCE_OUT = (
    f"body, {_US.format('create_time')} AS create_us, {_US.format('update_time')} AS update_us, "
    f"{_US.format('start_time')} AS start_us, {_US.format('end_time')} AS end_us"
)


def _incident_values(incident: IncidentRecord, now_us: int) -> list[Any]:
    """Values of _INCIDENT_COLUMNS, in order (create_time None on update keeps the stored one)."""
    return [
        incident.group_key,
        incident.state,
        incident.severity,
        incident.priority,
        incident.service,
        incident.model,
        json.dumps(dict(incident.labels), ensure_ascii=False),
        incident.title,
        incident.description,
        list(incident.assignees),
        incident.first_fingerprint,
        _ts(incident.create_us),
        _at(now_us if incident.update_us is None else incident.update_us),
        _ts(incident.acknowledge_us),
        _ts(incident.resolve_us),
        _ts(incident.next_escalation_us),
        incident.body,
    ]


class PostgresIncidentRecords:
    """Alerts, incidents, timeline entries, silences and policies in PostgreSQL, per tenant."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- alerts ---------------------------------------------------------------------------------

    async def upsert_alert(
        self, *, tenant: str, alert: AlertRecord, expected_version: int, now_us: int
    ) -> tuple[Stored, bool]:
        values = [tenant, *_alert_values(alert, now_us)]
        sets = (
            "fingerprint = $3, group_key = $4, incident_id = $5, status = $6, service = $7, model = $8, "
            "labels = $9::jsonb, first_seen_time = $10, last_seen_time = $11, duplicate_count = $12, "
            "silenced = $13, body = $14"
        )
        async with self._database.connection() as connection:
            if expected_version == 0:
                row = await connection.fetchrow(
                    f"""
                    INSERT INTO alerts (tenant_id, alert_id, fingerprint, group_key, incident_id, status,
                                        service, model, labels, first_seen_time, last_seen_time,
                                        duplicate_count, silenced, body, version)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, 1)
                    ON CONFLICT (tenant_id, alert_id) DO UPDATE SET {sets}, version = alerts.version + 1
                    RETURNING version, (xmax = 0) AS inserted
                    """,
                    *values,
                )
                return Stored(alert.body, version=row["version"]), bool(row["inserted"])
            version = await connection.fetchval(
                f"UPDATE alerts SET {sets}, version = version + 1 "
                "WHERE tenant_id = $1 AND alert_id = $2 AND version = $15 RETURNING version",
                *values,
                expected_version,
            )
            if version is None:
                current = await connection.fetchval(
                    "SELECT version FROM alerts WHERE tenant_id = $1 AND alert_id = $2",
                    tenant,
                    alert.alert_id,
                )
                if current is None:
                    raise NotFoundError(f"no alert {alert.alert_id!r}", reason="ALERT_NOT_FOUND")
                raise ConflictError(
                    f"alert {alert.alert_id!r} is at version {current}, not {expected_version}; "
                    "re-read and retry",
                    reason="VERSION_MISMATCH",
                    metadata={"version": str(current)},
                )
        return Stored(alert.body, version=version), False

    async def apply_alert_changes(
        self, *, tenant: str, changes: Sequence[AlertChange], now_us: int
    ) -> list[AlertChangeResult]:
        # Two transactions writing overlapping alerts in different orders may deadlock; PostgreSQL
        # aborts one, which is simply run again (nothing of it was committed).
        async with self._database.connection() as connection:
            for attempt in range(_DEADLOCK_RETRIES):
                try:
                    async with connection.transaction():
                        return await _apply_alert_changes(connection, tenant, changes, now_us)
                except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                    if attempt == _DEADLOCK_RETRIES - 1:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_alert(self, *, tenant: str, alert_id: str = "", fingerprint: str = "") -> Stored:
        async with self._database.connection() as connection:
            if alert_id:
                row = await connection.fetchrow(
                    "SELECT body, version FROM alerts WHERE tenant_id = $1 AND alert_id = $2",
                    tenant,
                    alert_id,
                )
            else:
                row = await connection.fetchrow(
                    "SELECT body, version FROM alerts WHERE tenant_id = $1 AND fingerprint = $2 "
                    "ORDER BY last_seen_time DESC, alert_id DESC LIMIT 1",
                    tenant,
                    fingerprint,
                )
        if row is None:
            raise NotFoundError("no such alert", reason="ALERT_NOT_FOUND")
        return _versioned(row)

    async def get_alerts(self, *, tenant: str, alert_ids: Sequence[str]) -> dict[str, Stored]:
        async with self._database.connection() as connection:
            rows = await connection.fetch(
                "SELECT alert_id, body, version FROM alerts "
                "WHERE tenant_id = $1 AND alert_id = ANY($2::text[])",
                tenant,
                list(alert_ids),
            )
        return {row["alert_id"]: _versioned(row) for row in rows}

    async def group_incidents(
        self, *, tenant: str, group_keys: Sequence[str]
    ) -> dict[str, tuple[Stored | None, Stored | None]]:
        async with self._database.connection() as connection:
            rows = await connection.fetch(
                f"""
                (SELECT {_INCIDENT_OUT}, group_key, true AS open FROM incidents
                 WHERE tenant_id = $1 AND group_key = ANY($2::text[]) AND state IN {_OPEN})
                UNION ALL
                (SELECT DISTINCT ON (group_key) {_INCIDENT_OUT}, group_key, false AS open FROM incidents
                 WHERE tenant_id = $1 AND group_key = ANY($2::text[]) AND state = $3
                 ORDER BY group_key, create_time DESC, incident_id DESC)
                """,
                tenant,
                list(dict.fromkeys(group_keys)),
                int(IncidentState.RESOLVED),
            )
        found: dict[str, tuple[Stored | None, Stored | None]] = {}
        for row in rows:
            open_incident, resolved = found.get(row["group_key"], (None, None))
            if row["open"]:
                open_incident = _timed(row)
            else:
                resolved = _timed(row)
            found[row["group_key"]] = (open_incident, resolved)
        return found

    async def list_alerts(self, *, tenant: str, filter: AlertFilter, page: PagePlan) -> StoredPage:
        sql = _Sql(tenant)
        sql.add("tenant_id = $1")
        sql.equal("incident_id", filter.incident_id)
        sql.equal("fingerprint", filter.fingerprint)
        sql.equal("group_key", filter.group_key)
        sql.any_of("status", filter.statuses)
        sql.labels("labels", filter.matchers)
        sql.range("last_seen_time", filter.start_us, filter.end_us)
        if page.after is not None:
            sql.add(
                f"(last_seen_time, alert_id) < ({sql.bind(_ts(page.after[0]))}, {sql.bind(page.after[1])})"
            )
        async with self._database.connection() as connection:
            with _bad_regex_is_invalid("matchers"):
                rows = await connection.fetch(
                    f"SELECT body, version, {_US.format('last_seen_time')} AS k0, alert_id AS k1 FROM alerts "
                    f"WHERE {sql.clause} ORDER BY last_seen_time DESC, alert_id DESC LIMIT {page.size + 1}",
                    *sql.args,
                )
        return _page(rows, page, _versioned)

    # -- incidents ------------------------------------------------------------------------------

    async def create_incident(
        self, *, tenant: str, incident: IncidentRecord, timeline: Sequence[TimelineRecord], now_us: int
    ) -> Stored:
        values = _incident_values(incident, now_us)
        values[11] = _at(now_us if incident.create_us is None else incident.create_us)
        async with self._database.connection() as connection:
            try:
                async with connection.transaction():
                    row = await connection.fetchrow(
                        f"""
                        INSERT INTO incidents (tenant_id, incident_id, {_INCIDENT_COLUMNS}, version)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12::text[], $13,
                                $14, $15, $16, $17, $18, $19, 1)
                        RETURNING {_INCIDENT_OUT}
                        """,
                        tenant,
                        incident.incident_id,
                        *values,
                    )
                    await _insert_timeline(connection, tenant, timeline)
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == "incidents_pkey":
                    raise AlreadyExistsError(
                        f"incident {incident.incident_id!r} exists",
                        reason="INCIDENT_EXISTS",
                        metadata={"incident_id": incident.incident_id},
                    ) from None
                await _open_incident_exists(connection, tenant, incident, exc)
        return _timed(row)

    async def update_incident(
        self,
        *,
        tenant: str,
        incident: IncidentRecord,
        expected_version: int,
        timeline: Sequence[TimelineRecord],
        request_id: str,
        now_us: int,
    ) -> Stored:
        sets = (
            "group_key = $3, state = $4, severity = $5, priority = $6, service = $7, model = $8, "
            "labels = $9::jsonb, title = $10, description = $11, assignees = $12::text[], "
            "first_fingerprint = $13, create_time = coalesce($14, create_time), update_time = $15, "
            "acknowledge_time = $16, resolve_time = $17, next_escalation_time = $18, body = $19"
        )
        async with self._database.connection() as connection:
            try:
                async with connection.transaction():
                    row = await connection.fetchrow(
                        f"""
                        UPDATE incidents SET {sets}, version = version + 1, last_request_id = $20
                        WHERE tenant_id = $1 AND incident_id = $2 AND version = $21
                        RETURNING {_INCIDENT_OUT}
                        """,
                        tenant,
                        incident.incident_id,
                        *_incident_values(incident, now_us),
                        request_id,
                        expected_version,
                    )
                    if row is None:
                        current = await connection.fetchrow(
                            f"SELECT {_INCIDENT_OUT}, last_request_id FROM incidents "
                            "WHERE tenant_id = $1 AND incident_id = $2",
                            tenant,
                            incident.incident_id,
                        )
                        if current is None:
                            raise NotFoundError(
                                f"no incident {incident.incident_id!r}", reason="INCIDENT_NOT_FOUND"
                            )
                        if request_id and current["last_request_id"] == request_id:
                            return _timed(current)  # a retry of the update that made this version
                        raise ConflictError(
                            f"incident {incident.incident_id!r} is at version {current['version']}, not "
                            f"{expected_version}; re-read and retry",
                            reason="VERSION_MISMATCH",
                            metadata={"version": str(current["version"])},
                        )
                    await _insert_timeline(connection, tenant, timeline)
            except asyncpg.UniqueViolationError as exc:
                await _open_incident_exists(connection, tenant, incident, exc)
        return _timed(row)

    async def get_incident(self, *, tenant: str, incident_id: str) -> Stored:
        async with self._database.connection() as connection:
            row = await connection.fetchrow(
                f"SELECT {_INCIDENT_OUT} FROM incidents WHERE tenant_id = $1 AND incident_id = $2",
                tenant,
                incident_id,
            )
        if row is None:
            raise NotFoundError(f"no incident {incident_id!r}", reason="INCIDENT_NOT_FOUND")
        return _timed(row)

    async def list_incidents(self, *, tenant: str, filter: IncidentFilter, page: PagePlan) -> StoredPage:
        sql = _Sql(tenant)
        sql.add("tenant_id = $1")
        sql.any_of("state", filter.states)
        sql.any_of("severity", filter.severities)
        sql.any_of("priority", filter.priorities)
        sql.equal("service", filter.service)
        sql.equal("model", filter.model)
        sql.equal("group_key", filter.group_key)
        sql.labels("labels", filter.matchers)
        sql.range("create_time", filter.start_us, filter.end_us)
        if filter.query:
            escaped = filter.query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = sql.bind(f"%{escaped}%")
            sql.add(f"(title ILIKE {pattern} OR description ILIKE {pattern})")
        if filter.assignee:
            sql.add(f"assignees @> ARRAY[{sql.bind(filter.assignee)}]::text[]")
        if filter.escalation_due_before_us is not None:
            key, order, before = "next_escalation_time", "ASC", ">"
            sql.add(f"next_escalation_time <= {sql.bind(_ts(filter.escalation_due_before_us))}")
        else:
            key, order, before = "create_time", "DESC", "<"
        if page.after is not None:
            sql.add(
                f"({key}, incident_id) {before} ({sql.bind(_ts(page.after[0]))}, {sql.bind(page.after[1])})"
            )
        async with self._database.connection() as connection:
            with _bad_regex_is_invalid("matchers"):
                rows = await connection.fetch(
                    f"SELECT {_INCIDENT_OUT}, {_US.format(key)} AS k0, incident_id AS k1 FROM incidents "
                    f"WHERE {sql.clause} ORDER BY {key} {order}, incident_id {order} LIMIT {page.size + 1}",
                    *sql.args,
                )
        return _page(rows, page, _timed)

    async def incident_stats(
        self, *, tenant: str, request: StatsRequest, start_us: int, end_us: int
    ) -> IncidentStats:
        args = [tenant, _at(start_us), _at(end_us), request.service, request.model]
        # One snapshot for the three queries, so the figures agree with each other.
        async with (
            self._database.connection() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            alerts = await connection.fetchrow(_ALERT_FIGURES, *args)
            incidents = await connection.fetchrow(
                _INCIDENT_FIGURES, *args, _ACKNOWLEDGED, _RESOLVED, int(TimelineKind.STATE_CHANGED)
            )
            timeline = await connection.fetchrow(
                _TIMELINE_FIGURES, *args, int(TimelineKind.REOPENED), int(TimelineKind.NOTIFIED)
            )
        return IncidentStats(
            start_us=start_us,
            end_us=end_us,
            alerts_received=int(alerts["received"]),
            alerts_deduplicated=int(alerts["deduplicated"]),
            alerts_grouped=alerts["grouped"],
            alerts_suppressed=alerts["suppressed"],
            incidents_created=incidents["created"],
            notifications_sent=timeline["sent"],
            notifications_failed=timeline["failed"],
            incidents_acknowledged=incidents["acknowledged"],
            incidents_resolved=incidents["resolved"],
            incidents_reopened=timeline["reopened"],
            time_to_acknowledge=Durations(
                _us(incidents["ack_mean"]), _us(incidents["ack_p50"]), _us(incidents["ack_p90"])
            ),
            time_to_resolve=Durations(
                _us(incidents["resolve_mean"]), _us(incidents["resolve_p50"]), _us(incidents["resolve_p90"])
            ),
        )

    # -- timeline -------------------------------------------------------------------------------

    async def append_timeline(self, *, tenant: str, entries: Sequence[TimelineRecord]) -> tuple[int, int]:
        wanted = sorted({entry.incident_id for entry in entries})
        async with self._database.connection() as connection, connection.transaction():
            # FOR KEY SHARE: the incidents cannot vanish before the entries commit.
            found = {
                row["incident_id"]
                for row in await connection.fetch(
                    "SELECT incident_id FROM incidents "
                    "WHERE tenant_id = $1 AND incident_id = ANY($2::text[]) FOR KEY SHARE",
                    tenant,
                    wanted,
                )
            }
            missing = [incident_id for incident_id in wanted if incident_id not in found]
            if missing:
                raise NotFoundError(
                    f"no incident {missing[0]!r}",
                    reason="INCIDENT_NOT_FOUND",
                    metadata={"incident_id": missing[0]},
                )
            appended = await _insert_timeline(connection, tenant, entries)
        return appended, len(entries) - appended

    async def list_timeline(self, *, tenant: str, filter: TimelineFilter, page: PagePlan) -> StoredPage:
        sql = _Sql(tenant, filter.incident_id)
        sql.add("tenant_id = $1 AND incident_id = $2")
        sql.any_of("kind", filter.kinds)
        sql.range("event_time", filter.start_us, filter.end_us)
        if page.after is not None:
            sql.add(f"(event_time, seq) > ({sql.bind(_ts(page.after[0]))}, {sql.bind(page.after[1])})")
        async with self._database.connection() as connection:
            exists = await connection.fetchval(
                "SELECT true FROM incidents WHERE tenant_id = $1 AND incident_id = $2",
                tenant,
                filter.incident_id,
            )
            if not exists:
                raise NotFoundError(f"no incident {filter.incident_id!r}", reason="INCIDENT_NOT_FOUND")
            rows = await connection.fetch(
                f"SELECT body, {_US.format('event_time')} AS k0, seq AS k1 FROM timeline_entries "
                f"WHERE {sql.clause} ORDER BY event_time, seq LIMIT {page.size + 1}",
                *sql.args,
            )
        return _page(rows, page, lambda row: Stored(bytes(row["body"])))

    # -- silences -------------------------------------------------------------------------------

    async def put_silence(self, *, tenant: str, silence: SilenceRecord, now_us: int) -> tuple[Stored, bool]:
        async with self._database.connection() as connection:
            try:
                row = await connection.fetchrow(
                    f"""
                    INSERT INTO silences (tenant_id, silence_id, start_time, end_time, create_time,
                                          update_time, body)
                    VALUES ($1, $2, coalesce($3::timestamptz, $7::timestamptz), $4,
                            coalesce($5::timestamptz, $7), coalesce($6::timestamptz, $7), $8)
                    ON CONFLICT (tenant_id, silence_id) DO UPDATE SET
                        start_time = coalesce($3, silences.start_time), end_time = $4,
                        create_time = coalesce($5, silences.create_time), update_time = coalesce($6, $7),
                        body = $8
                    RETURNING {_SILENCE_OUT}, (xmax = 0) AS inserted
                    """,
                    tenant,
                    silence.silence_id,
                    _ts(silence.start_us),
                    _ts(silence.end_us),
                    _ts(silence.create_us),
                    _ts(silence.update_us),
                    _at(now_us),
                    silence.body,
                )
            except asyncpg.CheckViolationError:
                # A replacement without start_time keeps the stored start, which ends up after end.
                raise InvalidArgumentError("silence.end_time", "must be after start_time") from None
        return _silence(row), bool(row["inserted"])

    async def list_silences(
        self, *, tenant: str, states: tuple[SilenceState, ...], page: PagePlan, now_us: int
    ) -> StoredPage:
        sql = _Sql(tenant)
        sql.add("tenant_id = $1")
        if states:
            now = sql.bind(_at(now_us))
            conditions = {
                SilenceState.PENDING: f"start_time > {now}",
                SilenceState.ACTIVE: f"(start_time <= {now} AND end_time > {now})",
                SilenceState.EXPIRED: f"end_time <= {now}",
            }
            sql.add("(" + " OR ".join(conditions[state] for state in sorted(set(states))) + ")")
        if page.after is not None:
            sql.add(
                f"(create_time, silence_id) < ({sql.bind(_ts(page.after[0]))}, {sql.bind(page.after[1])})"
            )
        async with self._database.connection() as connection:
            rows = await connection.fetch(
                f"SELECT {_SILENCE_OUT}, {_US.format('create_time')} AS k0, silence_id AS k1 FROM silences "
                f"WHERE {sql.clause} ORDER BY create_time DESC, silence_id DESC LIMIT {page.size + 1}",
                *sql.args,
            )
        return _page(rows, page, _silence)

    async def delete_silence(self, *, tenant: str, silence_id: str) -> None:
        async with self._database.connection() as connection:
            deleted = await connection.fetchval(
                "DELETE FROM silences WHERE tenant_id = $1 AND silence_id = $2 RETURNING true",
                tenant,
                silence_id,
            )
        if not deleted:
            raise NotFoundError(f"no silence {silence_id!r}", reason="SILENCE_NOT_FOUND")

    # -- policies -------------------------------------------------------------------------------

    async def put_policy(
        self, *, tenant: str, policy: PolicyRecord, expected_version: int, request_id: str, now_us: int
    ) -> tuple[Stored, bool]:
        values = [
            tenant,
            int(policy.kind),
            policy.policy_id,
            policy.name,
            policy.order,
            _at(now_us),
            request_id,
        ]
        async with self._database.connection() as connection:
            try:
                if expected_version == 0:
                    # A retry of a committed put (same request_id) changes nothing: no row returned.
                    row = await connection.fetchrow(
                        f"""
                        INSERT INTO policies (tenant_id, kind, policy_id, name, sort_order, version,
                                              create_time, update_time, last_request_id, body)
                        VALUES ($1, $2, $3, $4, $5, 1, $6, $6, $7, $8)
                        ON CONFLICT (tenant_id, kind, policy_id) DO UPDATE SET
                            name = $4, sort_order = $5, version = policies.version + 1, update_time = $6,
                            last_request_id = $7, body = $8
                        WHERE $7 = '' OR policies.last_request_id <> $7
                        RETURNING {_POLICY_OUT}, (xmax = 0) AS inserted
                        """,
                        *values,
                        policy.body,
                    )
                else:
                    row = await connection.fetchrow(
                        f"""
                        UPDATE policies SET name = $4, sort_order = $5, version = version + 1,
                            update_time = $6, last_request_id = $7, body = $8
                        WHERE tenant_id = $1 AND kind = $2 AND policy_id = $3 AND version = $9
                        RETURNING {_POLICY_OUT}, false AS inserted
                        """,
                        *values,
                        policy.body,
                        expected_version,
                    )
            except asyncpg.UniqueViolationError:
                raise AlreadyExistsError(
                    f"another {policy.kind.name.lower()} is named {policy.name!r}",
                    reason="NAME_TAKEN",
                    metadata={"name": policy.name},
                ) from None
            if row is not None:
                return _timed(row), bool(row["inserted"])
            current = await connection.fetchrow(
                f"SELECT {_POLICY_OUT}, last_request_id FROM policies "
                "WHERE tenant_id = $1 AND kind = $2 AND policy_id = $3",
                tenant,
                int(policy.kind),
                policy.policy_id,
            )
        if current is None:
            raise NotFoundError(f"no policy {policy.policy_id!r}", reason="POLICY_NOT_FOUND")
        if request_id and current["last_request_id"] == request_id:
            return _timed(current), current["version"] == 1
        raise ConflictError(
            f"policy {policy.policy_id!r} is at version {current['version']}, not {expected_version}; "
            "re-read and retry",
            reason="VERSION_MISMATCH",
            metadata={"version": str(current["version"])},
        )

    async def get_policy(self, *, tenant: str, kind: PolicyKind, policy_id: str) -> Stored:
        async with self._database.connection() as connection:
            row = await connection.fetchrow(
                f"SELECT {_POLICY_OUT} FROM policies WHERE tenant_id = $1 AND kind = $2 AND policy_id = $3",
                tenant,
                int(kind),
                policy_id,
            )
        if row is None:
            raise NotFoundError(f"no policy {policy_id!r}", reason="POLICY_NOT_FOUND")
        return _timed(row)

    async def list_policies(self, *, tenant: str, kind: PolicyKind, page: PagePlan) -> StoredPage:
        sql = _Sql(tenant, int(kind))
        sql.add("tenant_id = $1 AND kind = $2")
        if page.after is not None:
            sql.add(f"(sort_order, name) > ({sql.bind(page.after[0])}, {sql.bind(page.after[1])})")
        async with self._database.connection() as connection:
            rows = await connection.fetch(
                f"SELECT {_POLICY_OUT}, sort_order AS k0, name AS k1 FROM policies "
                f"WHERE {sql.clause} ORDER BY sort_order, name LIMIT {page.size + 1}",
                *sql.args,
            )
        return _page(rows, page, _timed)

    async def delete_policy(
        self, *, tenant: str, kind: PolicyKind, policy_id: str, expected_version: int
    ) -> None:
        async with self._database.connection() as connection:
            deleted = await connection.fetchval(
                "DELETE FROM policies WHERE tenant_id = $1 AND kind = $2 AND policy_id = $3 "
                "AND ($4 = 0 OR version = $4) RETURNING true",
                tenant,
                int(kind),
                policy_id,
                expected_version,
            )
            if deleted:
                return
            current = await connection.fetchval(
                "SELECT version FROM policies WHERE tenant_id = $1 AND kind = $2 AND policy_id = $3",
                tenant,
                int(kind),
                policy_id,
            )
        if current is None:
            raise NotFoundError(f"no policy {policy_id!r}", reason="POLICY_NOT_FOUND")
        raise ConflictError(
            f"policy {policy_id!r} is at version {current}, not {expected_version}",
            reason="VERSION_MISMATCH",
            metadata={"version": str(current)},
        )


_DEADLOCK_RETRIES = 5
_ALERT_SETS = (
    "fingerprint = {0}.fingerprint, group_key = {0}.group_key, incident_id = {0}.incident_id, "
    "status = {0}.status, service = {0}.service, model = {0}.model, labels = {0}.labels::jsonb, "
    "first_seen_time = {0}.first_seen_time, last_seen_time = {0}.last_seen_time, "
    "duplicate_count = {0}.duplicate_count, silenced = {0}.silenced, body = {0}.body"
)
# The alert columns after tenant_id, as unnest() parameters $2..$14 (one array per column).
_ALERT_UNNEST = (
    "unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[], $7::text[], $8::text[], "
    "$9::text[], $10::timestamptz[], $11::timestamptz[], $12::bigint[], $13::boolean[], $14::bytea[]{extra}) "
    "AS t(alert_id, fingerprint, group_key, incident_id, status, service, model, labels, "
    "first_seen_time, last_seen_time, duplicate_count, silenced, body{extra_names})"
)


def _alert_values(alert: AlertRecord, now_us: int) -> list[Any]:
    """alert_id and the columns after it, as upsert_alert writes them (times filled in)."""
    last_seen = alert.last_seen_us if alert.last_seen_us is not None else alert.first_seen_us
    last_seen = now_us if last_seen is None else last_seen
    first_seen = last_seen if alert.first_seen_us is None else alert.first_seen_us
    return [
        alert.alert_id,
        alert.fingerprint,
        alert.group_key,
        alert.incident_id,
        alert.status,
        alert.service,
        alert.model,
        json.dumps(dict(alert.labels), ensure_ascii=False),
        _at(first_seen),
        _at(last_seen),
        alert.duplicate_count,
        alert.silenced,
        alert.body,
    ]


def _columns(changes: Sequence[AlertChange], now_us: int) -> list[list[Any]]:
    """The alerts of `changes` as one list per column (unnest's arrays)."""
    return [list(column) for column in zip(*(_alert_values(c.alert, now_us) for c in changes), strict=True)]


async def _apply_alert_changes(
    connection: asyncpg.Connection, tenant: str, changes: Sequence[AlertChange], now_us: int
) -> list[AlertChangeResult]:
    """The statements of apply_alert_changes, inside its transaction: a few per call, not per change."""
    index = {change.alert.alert_id: i for i, change in enumerate(changes)}
    results: list[AlertChangeResult | None] = [None] * len(changes)
    opening = [(i, c.new_incident) for i, c in enumerate(changes) if c.new_incident is not None]
    if opening:
        refused = await _insert_new_incidents(connection, tenant, [inc for _, inc in opening], now_us)
        for i, incident in opening:
            if incident.incident_id in refused:
                results[i] = AlertChangeResult(
                    AlertChangeStatus.OPEN_INCIDENT_EXISTS, incident_id=refused[incident.incident_id]
                )
    go_on = [c for i, c in enumerate(changes) if results[i] is None]
    conditional = [c for c in go_on if c.expected_version > 0]
    unconditional = [c for c in go_on if c.expected_version == 0]
    if conditional:
        rows = await connection.fetch(
            f"UPDATE alerts a SET {_ALERT_SETS.format('t')}, version = a.version + 1 "
            f"FROM {_ALERT_UNNEST.format(extra=', $15::bigint[]', extra_names=', expected_version')} "
            "WHERE a.tenant_id = $1 AND a.alert_id = t.alert_id AND a.version = t.expected_version "
            "RETURNING a.alert_id, a.version",
            tenant,
            *_columns(conditional, now_us),
            [c.expected_version for c in conditional],
        )
        for row in rows:
            results[index[row["alert_id"]]] = AlertChangeResult(AlertChangeStatus.APPLIED, row["version"])
        missed = [c.alert.alert_id for c in conditional if results[index[c.alert.alert_id]] is None]
        if missed:
            current = {
                row["alert_id"]: row["version"]
                for row in await connection.fetch(
                    "SELECT alert_id, version FROM alerts "
                    "WHERE tenant_id = $1 AND alert_id = ANY($2::text[])",
                    tenant,
                    missed,
                )
            }
            for alert_id in missed:
                version = current.get(alert_id)
                results[index[alert_id]] = (
                    AlertChangeResult(AlertChangeStatus.ALERT_NOT_FOUND)
                    if version is None
                    else AlertChangeResult(AlertChangeStatus.VERSION_MISMATCH, version)
                )
    if unconditional:
        rows = await connection.fetch(
            f"""
            INSERT INTO alerts (tenant_id, alert_id, fingerprint, group_key, incident_id, status, service,
                                model, labels, first_seen_time, last_seen_time, duplicate_count, silenced,
                                body, version)
            SELECT $1, t.alert_id, t.fingerprint, t.group_key, t.incident_id, t.status, t.service, t.model,
                   t.labels::jsonb, t.first_seen_time, t.last_seen_time, t.duplicate_count, t.silenced,
                   t.body, 1
            FROM {_ALERT_UNNEST.format(extra="", extra_names="")}
            ON CONFLICT (tenant_id, alert_id) DO UPDATE SET {_ALERT_SETS.format("excluded")},
                version = alerts.version + 1
            RETURNING alert_id, version, (xmax = 0) AS inserted
            """,
            tenant,
            *_columns(unconditional, now_us),
        )
        for row in rows:
            results[index[row["alert_id"]]] = AlertChangeResult(
                AlertChangeStatus.APPLIED, row["version"], created=bool(row["inserted"])
            )
    owner: dict[str, int] = {}
    entries: list[TimelineRecord] = []
    for i, change in enumerate(changes):
        result = results[i]
        if result is not None and result.status is AlertChangeStatus.APPLIED:
            for entry in change.timeline:
                owner[entry.entry_id] = i
                entries.append(entry)
    if entries:
        appended = [0] * len(changes)
        for entry_id in await _insert_timeline_rows(connection, tenant, entries, skip_missing_incidents=True):
            appended[owner[entry_id]] += 1
        results = [
            r if r is None or not appended[i] else dataclasses.replace(r, timeline_appended=appended[i])
            for i, r in enumerate(results)
        ]
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


async def _insert_new_incidents(
    connection: asyncpg.Connection, tenant: str, incidents: Sequence[IncidentRecord], now_us: int
) -> dict[str, str]:
    """Insert the changes' new incidents in one statement, earlier ones first; one already stored
    (a retry) is kept. Returns the refused ones (another open incident has their group key): their
    id -> that incident's id."""
    rows = []
    for incident in incidents:
        values = _incident_values(incident, now_us)
        values[11] = _at(now_us if incident.create_us is None else incident.create_us)
        values[9] = json.dumps(values[9])  # assignees: unnest() cannot take an array of arrays
        rows.append([incident.incident_id, *values])
    columns = [list(column) for column in zip(*rows, strict=True)]
    inserted = {
        row["incident_id"]
        for row in await connection.fetch(
            f"""
            INSERT INTO incidents (tenant_id, incident_id, {_INCIDENT_COLUMNS}, version)
            SELECT $1, t.incident_id, t.group_key, t.state, t.severity, t.priority, t.service, t.model,
                   t.labels::jsonb, t.title, t.description,
                   ARRAY(SELECT jsonb_array_elements_text(t.assignees::jsonb)), t.first_fingerprint,
                   t.create_time, t.update_time, t.acknowledge_time, t.resolve_time,
                   t.next_escalation_time, t.body, 1
            FROM unnest($2::text[], $3::text[], $4::smallint[], $5::smallint[], $6::smallint[], $7::text[],
                        $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                        $14::timestamptz[], $15::timestamptz[], $16::timestamptz[], $17::timestamptz[],
                        $18::timestamptz[], $19::bytea[])
                 WITH ORDINALITY AS t(incident_id, group_key, state, severity, priority, service, model,
                                      labels, title, description, assignees, first_fingerprint,
                                      create_time, update_time, acknowledge_time, resolve_time,
                                      next_escalation_time, body, n)
            ORDER BY t.n
            ON CONFLICT DO NOTHING
            RETURNING incident_id
            """,
            tenant,
            *columns,
        )
    }
    skipped = [incident for incident in incidents if incident.incident_id not in inserted]
    if not skipped:
        return {}
    stored = {
        row["incident_id"]
        for row in await connection.fetch(
            "SELECT incident_id FROM incidents WHERE tenant_id = $1 AND incident_id = ANY($2::text[])",
            tenant,
            [incident.incident_id for incident in skipped],
        )
    }
    refused = [incident for incident in skipped if incident.incident_id not in stored]
    if not refused:
        return {}
    open_of = {
        row["group_key"]: row["incident_id"]
        for row in await connection.fetch(
            f"SELECT group_key, incident_id FROM incidents WHERE tenant_id = $1 "
            f"AND group_key = ANY($2::text[]) AND state IN {_OPEN}",
            tenant,
            [incident.group_key for incident in refused],
        )
    }
    return {incident.incident_id: open_of.get(incident.group_key, "") for incident in refused}


async def _insert_timeline(
    connection: asyncpg.Connection, tenant: str, entries: Sequence[TimelineRecord]
) -> int:
    """Insert entries in order, skipping entry_ids already stored; returns how many were new."""
    if not entries:
        return 0
    return len(await _insert_timeline_rows(connection, tenant, entries))


async def _insert_timeline_rows(
    connection: asyncpg.Connection,
    tenant: str,
    entries: Sequence[TimelineRecord],
    *,
    skip_missing_incidents: bool = False,
) -> list[str]:
    """Insert entries in order, skipping entry_ids already stored (and, if asked, entries of
    incidents that do not exist, instead of failing); returns the entry_ids stored."""
    existing = (
        "WHERE EXISTS (SELECT 1 FROM incidents i WHERE i.tenant_id = $1 AND i.incident_id = t.incident_id)"
        if skip_missing_incidents
        else ""
    )
    rows = await connection.fetch(
        f"""
        INSERT INTO timeline_entries (tenant_id, entry_id, incident_id, event_time, kind, to_value,
                                      attributes, body)
        SELECT $1, t.entry_id, t.incident_id, t.event_time, t.kind, t.to_value, t.attributes::jsonb, t.body
        FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::smallint[], $6::text[], $7::text[],
                    $8::bytea[]) WITH ORDINALITY AS t(entry_id, incident_id, event_time, kind, to_value,
                                                      attributes, body, n)
        {existing}
        ORDER BY t.n
        ON CONFLICT (tenant_id, entry_id) DO NOTHING
        RETURNING entry_id
        """,
        tenant,
        [e.entry_id for e in entries],
        [e.incident_id for e in entries],
        [_ts(e.event_us) for e in entries],
        [e.kind for e in entries],
        [e.to_value for e in entries],
        [json.dumps(dict(e.attributes), ensure_ascii=False) for e in entries],
        [e.body for e in entries],
    )
    return [row["entry_id"] for row in rows]


async def _open_incident_exists(
    connection: asyncpg.Connection,
    tenant: str,
    incident: IncidentRecord,
    exc: asyncpg.UniqueViolationError,
) -> None:
    """Raise ALREADY_EXISTS naming the open incident of the group key (the transaction is over)."""
    if exc.constraint_name != "incidents_open_group_key":
        raise exc
    other = await connection.fetchval(
        f"SELECT incident_id FROM incidents WHERE tenant_id = $1 AND group_key = $2 AND state IN {_OPEN} "
        "AND incident_id <> $3",
        tenant,
        incident.group_key,
        incident.incident_id,
    )
    raise AlreadyExistsError(
        f"incident {other!r} is already open for this group key",
        reason="OPEN_INCIDENT_EXISTS",
        metadata={"incident_id": other or "", "group_key": incident.group_key[:200]},
    ) from None


# $1 tenant, $2 start, $3 end, $4 service ('' = all), $5 model ('' = all).
_SCOPE = "($4 = '' OR {0}.service = $4) AND ($5 = '' OR {0}.model = $5)"

# Alerts first seen in the range, with all their repeats; "grouped" ones joined an incident that
# another alert (its first fingerprint) had opened.
_ALERT_FIGURES = f"""
SELECT count(*) + coalesce(sum(a.duplicate_count), 0) AS received,
       coalesce(sum(a.duplicate_count), 0) AS deduplicated,
       count(*) FILTER (WHERE a.silenced) AS suppressed,
       count(*) FILTER (WHERE i.incident_id IS NOT NULL AND a.fingerprint <> i.first_fingerprint) AS grouped
FROM alerts a
LEFT JOIN incidents i ON i.tenant_id = a.tenant_id AND i.incident_id = a.incident_id
WHERE a.tenant_id = $1 AND a.first_seen_time >= $2 AND a.first_seen_time < $3 AND {_SCOPE.format("a")}
"""

# Time to acknowledge/resolve: from creation to the first acknowledgement/resolution (the first
# STATE_CHANGED entry to that state, else the incident's own time), for incidents whose first one
# falls in the range. Anything acknowledged or resolved in the range was updated in it, which
# bounds the incidents read. $6/$7 the state names, $8 the STATE_CHANGED kind.
_INCIDENT_FIGURES = f"""
WITH candidates AS (
    SELECT i.incident_id, i.create_time, i.acknowledge_time, i.resolve_time
    FROM incidents i
    WHERE i.tenant_id = $1 AND i.create_time < $3 AND {_SCOPE.format("i")}
      AND (i.create_time >= $2 OR i.update_time >= $2 OR i.acknowledge_time >= $2 OR i.resolve_time >= $2)
), firsts AS (
    SELECT c.create_time,
           coalesce(t.first_ack, c.acknowledge_time) AS ack_time,
           coalesce(t.first_resolve, c.resolve_time) AS resolved_time
    FROM candidates c
    LEFT JOIN LATERAL (
        SELECT min(e.event_time) FILTER (WHERE e.to_value = ANY($6::text[])) AS first_ack,
               min(e.event_time) FILTER (WHERE e.to_value = ANY($7::text[])) AS first_resolve
        FROM timeline_entries e
        WHERE e.tenant_id = $1 AND e.incident_id = c.incident_id AND e.kind = $8
    ) t ON true
), spans AS (
    SELECT create_time,
           CASE WHEN ack_time >= $2 AND ack_time < $3
                THEN greatest(extract(epoch FROM ack_time - create_time) * 1000000, 0)::float8 END AS ack_us,
           CASE WHEN resolved_time >= $2 AND resolved_time < $3
                THEN greatest(extract(epoch FROM resolved_time - create_time) * 1000000, 0)::float8
           END AS resolve_us
    FROM firsts
)
SELECT count(*) FILTER (WHERE create_time >= $2) AS created,
       count(ack_us) AS acknowledged,
       avg(ack_us) AS ack_mean,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ack_us) AS ack_p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY ack_us) AS ack_p90,
       count(resolve_us) AS resolved,
       avg(resolve_us) AS resolve_mean,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY resolve_us) AS resolve_p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY resolve_us) AS resolve_p90
FROM spans
"""

# Reopenings (distinct incidents) and notification outcomes recorded in the range. $6 REOPENED,
# $7 NOTIFIED.
_TIMELINE_FIGURES = f"""
SELECT count(DISTINCT e.incident_id) FILTER (WHERE e.kind = $6) AS reopened,
       count(*) FILTER (WHERE e.kind = $7 AND e.attributes ->> 'outcome' = 'sent') AS sent,
       count(*) FILTER (WHERE e.kind = $7 AND e.attributes ->> 'outcome' = 'failed') AS failed
FROM timeline_entries e
JOIN incidents i ON i.tenant_id = e.tenant_id AND i.incident_id = e.incident_id
WHERE e.tenant_id = $1 AND e.kind IN ($6, $7) AND e.event_time >= $2 AND e.event_time < $3
  AND {_SCOPE.format("i")}
"""
