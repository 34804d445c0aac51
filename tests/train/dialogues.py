"""Small tool-use dialogues for the training tests: the tiny model's and the real checkpoint's."""

from __future__ import annotations

import json
import random

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "book_table",
            "description": "Book a restaurant table",
            "parameters": {
                "type": "object",
                "properties": {"restaurant": {"type": "string"}, "people": {"type": "integer"}},
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "convert_currency",
            "description": "Convert an amount of money",
            "parameters": {
                "type": "object",
                "properties": {"amount": {"type": "number"}, "to": {"type": "string"}},
            },
        },
    },
]
CITIES = ["Paris", "Berlin", "Tokyo", "Lima", "Oslo", "Cairo"]


def dialogue_row(rng: random.Random, index: int) -> dict:
    """System, user ask, assistant tool call, tool result, assistant answer; tools vary per row."""
    city, temp = rng.choice(CITIES), rng.randint(-5, 35)
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
    }
    messages = [
        {"role": "system", "content": "You are a helpful travel assistant."},
        {"role": "user", "content": f"What is the weather in {city}?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {
            "role": "tool",
            "tool_call_id": "call_1",
            "name": "get_weather",
            "content": json.dumps({"city": city, "temp_c": temp}),
        },
        {"role": "assistant", "content": f"It is {temp} degrees in {city}."},
    ]
    return {"messages": messages, "tools": TOOLS[: 1 + index % len(TOOLS)]}
