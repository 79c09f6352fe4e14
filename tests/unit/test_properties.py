"""Property-based: any bytes on any topic end accepted or quarantined with a reason, never raise."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import PayloadError
from edge.ingest.codecs import decode_payload
from edge.ingest.topics import TopicMapper, filter_matches
from edge.ingest.validation import ReadingValidator
from edge.records import Reading
from edge.settings import IngestLimits, SubscriptionSettings

MAPPER = TopicMapper([
    SubscriptionSettings(topic="factory/#", template="factory/{site}/{asset}/{sensor}"),
    SubscriptionSettings(topic="plc/+/+", template="plc/{asset}/{sensor}", sensor_id="{asset}.{sensor}"),
    SubscriptionSettings(topic="#"),
])
VALIDATOR = ReadingValidator(IngestLimits(), {})
NOW_US = 1_790_000_000_000_000

ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what JSON encoders emit
json_values = st.recursive(
    st.none() | st.booleans() | ints | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children,
                                                                       max_size=5),
    max_leaves=20)
readingish = st.fixed_dictionaries({}, optional={
    "sensor_id": st.text(max_size=50) | ints, "ts": json_values | st.floats(),
    "value": st.floats() | ints | json_values, "unit": json_values, "quality": json_values})


def _ingest(topic: str, payload: bytes) -> list[Reading | str]:
    """What the acquisition agent does with one message: readings, or rejection reasons."""
    context = MAPPER.context(topic)
    try:
        items = decode_payload(payload, 65536, 1000)
    except PayloadError as exc:
        return [exc.reason]
    outcomes: list[Reading | str] = []
    for item in items:
        try:
            outcomes.append(VALIDATOR.validate(item, context, NOW_US))
        except PayloadError as exc:
            outcomes.append(exc.reason)
    return outcomes


def _check(outcomes: list[Reading | str]) -> None:
    assert outcomes
    for outcome in outcomes:
        if isinstance(outcome, Reading):
            assert isinstance(outcome.value, float) and outcome.value == outcome.value
            assert abs(outcome.value) != float("inf")
            assert outcome.ts_us - NOW_US <= 300 * 1_000_000
        else:
            assert outcome and outcome.replace("_", "").isalnum()


@settings(max_examples=400, deadline=None)
@given(topic=st.text(max_size=80), payload=st.binary(max_size=300))
def test_arbitrary_bytes_on_arbitrary_topics_are_accepted_or_rejected_with_a_reason(
    topic: str, payload: bytes
) -> None:
    _check(_ingest(topic, payload))


@settings(max_examples=400, deadline=None)
@given(topic=st.sampled_from(["factory/p1/pump-3/t", "plc/a/b", "x", "factory/a"]),
       document=readingish | st.lists(readingish, max_size=5) | json_values)
def test_arbitrary_json_documents_are_accepted_or_rejected_with_a_reason(topic: str,
                                                                        document: object) -> None:
    _check(_ingest(topic, orjson.dumps(document)))


@given(payload=st.sampled_from([
    b'{"value": 123456789012345678901234567890}', b'{"value": 1e999}', b'{"value": -1e999}',
    b'{"value": 1, "ts": 99999999999999999999999999}', b"1e999", b"-0", b'[{"value": 1}]' * 2,
    b'{"value": 1, "ts": "9999-12-31T23:59:59Z"}', b'{"value": 1, "ts": "0001-01-01T00:00:00Z"}']))
def test_extreme_numbers_and_times_are_handled(payload: bytes) -> None:
    _check(_ingest("factory/p1/pump-3/t", payload))


@settings(max_examples=300, deadline=None)
@given(levels=st.lists(st.sampled_from(["a", "b", "+", "#", "", "$SYS"]), min_size=1, max_size=5),
       topic=st.lists(st.sampled_from(["a", "b", "", "$SYS"]), min_size=1, max_size=5))
def test_filter_matching_never_raises_and_hash_matches_everything_below(levels: list[str],
                                                                        topic: list[str]) -> None:
    result = filter_matches("/".join(levels), "/".join(topic))
    assert isinstance(result, bool)
    if topic[0] != "$SYS":
        assert filter_matches("#", "/".join(topic))


@settings(max_examples=300, deadline=None)
@given(topic=st.text(max_size=120))
def test_topic_mapping_never_raises_and_is_cached(topic: str) -> None:
    first = MAPPER.context(topic)
    assert MAPPER.context(topic) is first
    assert first.subscription in ("factory/#", "plc/+/+", "#", "unmatched")
