"""Real-world names: reads versus writes from tool names in any naming style (file-system and social verbs,
the description when the name starts with no verb), and seeded values from field names in any style."""

import pytest

from envgen.catalog.spec import ToolSpec
from envgen.environment.schema import classify, leading_verb


def tool(name: str, description: str = "", many: bool = False) -> ToolSpec:
    returns = {"type": "array", "items": {"type": "object"}} if many else {"type": "object"}
    return ToolSpec(name, description, {"type": "object", "properties": {}}, returns, "openai", "test")


@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("createUser", "insert"),
        ("CreateUser", "insert"),
        ("create-user", "insert"),
        ("mkdir", "insert"),
        ("postTweet", "insert"),
        ("follow", "insert"),
        ("rm", "delete"),
        ("unfollowUser", "delete"),
        ("mv", "update"),
        ("renameFile", "update"),
        ("cancel_order", "update"),
        ("setBudgetLimit", "update"),
        ("getWeather", "get"),
    ],
)
def test_the_leading_verb_decides_in_any_naming_style(name, action):
    assert classify(tool(name)) == action


def test_the_description_decides_when_the_name_starts_with_no_verb():
    assert leading_verb(tool("directory", "Creates a directory at the given path.")) == "create"
    assert classify(tool("tweet_remover", "Deletes a tweet by its id.")) == "delete"
    assert classify(tool("fan_speed", "Sets the fan speed of a device.")) == "update"
    assert classify(tool("forecast", "Daily forecast for a city.", many=True)) == "list"
    # words that open a read's description as nouns or as "returns" never make it a write
    assert classify(tool("weather", "Returns the weather for a city.")) == "get"
    assert classify(tool("user_orders", "Orders placed by a user.", many=True)) == "list"


def test_seeded_values_follow_the_field_name_in_any_naming_style():
    import datetime as dt
    import random

    from envgen.environment.programs import Column
    from envgen.environment.seed import fake_value, seeded_faker, snake_name

    assert [snake_name(n) for n in ("startDate", "phoneNumber", "Zip-Code", "order_id")] == [
        "start_date",
        "phone_number",
        "zip_code",
        "order_id",
    ]
    fake, rng = seeded_faker(0), random.Random(0)
    dt.date.fromisoformat(fake_value(Column(name="startDate", type="string"), fake, rng))  # a date
    assert "@" in fake_value(Column(name="contactEmail", type="string"), fake, rng)
    assert fake_value(Column(name="phoneNumber", type="string"), fake, rng).startswith("+1-")
    assert 1 <= fake_value(Column(name="guestCount", type="integer"), fake, rng) <= 9
