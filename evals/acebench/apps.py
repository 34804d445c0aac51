"""The simulated phone apps of ACEBench's agent tasks (device, messages, reminders, food delivery).

Behaviour is reimplemented from ACEBench's scenario classes, call for call: the same preconditions (Wi-Fi,
device login, platform login, capacity, balance), the same state changes, the same replies (messages,
shapes, and the "Error during execution: ..." text of a call that raises there, such as a sent message
without a `time` in a date lookup), and the same saved attributes that its final-state check compares.
`benchmarks/acebench_agent_crosscheck.py` runs both on the same calls and prints where they differ.

The apps' starting data (users, inbox, reminders, merchants and menus, flights) is not ours to restate: it
is read from the user's ACEBench checkout by parsing the scenario modules with `ast` and taking the literal
`self.<attr> = ...` assignments of each class's `__init__` (never importing or running that code). The
same parse gives the public methods the checkout's class defines, and only those can be called: the
English and Chinese classes differ (the Chinese reminders add `search_reminders` and `mark_as_notified`).
A class whose source is not found, or that we do not implement, is an error naming the class.

As in ACEBench, each involved class is its own instance with its own Wi-Fi / login flags, and a call is sent
to every involved instance that has the method (so `turn_on_wifi()` switches all of them on).
"""

from __future__ import annotations

import ast
import copy
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from evals.acebench.travel import Travel

SAVED_ATTRS = {
    "BaseApi": ("wifi", "logged_in"),
    "MessageApi": ("inbox",),
    "ReminderApi": ("reminder_list",),
    "FoodPlatform": ("users", "logged_in_users", "orders"),
    "Travel": ("users", "reservations"),
}
_MODULE = {
    "BaseApi": "phone_platform/base_api.py",
    "MessageApi": "phone_platform/message.py",
    "ReminderApi": "phone_platform/reminder.py",
    "FoodPlatform": "phone_platform/food_services.py",
    "Travel": "travel.py",
}


# ACEBench's multi_turn execution answers a call that raises with its error template unformatted (this
# literal text, the exception's message lost) and runs none of the step's later calls.
MULTI_TURN_ERROR = "Error during execution: {str(e)}"
# A function no involved class defines runs nothing there: the step's previous reply is repeated for it, or,
# as its first call, the loop's unbound result variable raises this (Python 3.11's wording).
UNBOUND_RESULT = (
    "Error during execution: cannot access local variable 'func_call_result' where it is not associated "
    "with a value"
)


class ScenarioUnavailable(LookupError):
    """A scenario class that cannot be run honestly here (unsupported, or its source data is missing)."""


def _status(ok: bool, message: str, **extra: Any) -> dict[str, Any]:
    return {"status": ok, "message": message, **extra}


class BaseApi:
    """Device state shared by every app: Wi-Fi and device login."""

    def __init__(self, defaults: dict[str, Any], language: str = "en") -> None:
        """`language` is the data's; the phone apps compare no argument with words of it."""
        self.wifi = False
        self.logged_in = True
        for key, val in copy.deepcopy(defaults).items():
            setattr(self, key, val)

    def _load_scenario(self, config: dict[str, Any]) -> None:
        self.wifi = config.get("wifi", False)
        self.logged_in = config.get("logged_in", True)

    def turn_on_wifi(self) -> dict[str, Any]:
        self.wifi = True
        return _status(True, "Wi-Fi has been turned on")

    def login_device(self) -> dict[str, Any]:
        self.logged_in = True
        return _status(True, "Device has been logged in")


class MessageApi(BaseApi):
    """An inbox with a capacity; messages are addressed by user name and stored by user id."""

    max_capacity: int
    user_list: dict[str, dict[str, Any]]
    inbox: dict[int, dict[str, Any]]
    message_id_counter: int

    def _user_id(self, name: str) -> str | None:
        user = self.user_list.get(name)
        return user.get("user_id") if user else None

    def send_message(self, sender_name: str, receiver_name: str, message: str) -> dict[str, Any]:
        if not self.logged_in:
            return _status(False, "Device not logged in, unable to send message")
        if not self.wifi:
            return _status(False, "Wi-Fi is turned off, cannot send messages at this time")
        if len(self.inbox) >= self.max_capacity:
            return _status(False, "Inbox capacity is full. You need to ask the user which message to delete.")
        sender, receiver = self._user_id(sender_name), self._user_id(receiver_name)
        if sender is None or receiver is None:
            return _status(False, "Sender or receiver does not exist")
        self.message_id_counter += 1
        self.inbox[self.message_id_counter] = {
            "sender_id": sender,
            "receiver_id": receiver,
            "message": message,
        }
        return _status(True, f"Message successfully sent to {receiver_name}.")

    def delete_message(self, message_id: int) -> dict[str, Any]:
        if not self.logged_in:
            return _status(False, "Device not logged in, unable to delete message")
        if message_id not in self.inbox:
            return _status(False, "Message ID does not exist")
        del self.inbox[message_id]
        return _status(True, f"Message ID {message_id} has been successfully deleted.")

    def view_messages_between_users(self, sender_name: str, receiver_name: str) -> dict[str, Any]:
        if not self.logged_in:
            return _status(False, "Device not logged in, unable to view message information")
        sender, receiver = self._user_id(sender_name), self._user_id(receiver_name)
        if sender is None:
            return _status(False, "Sender does not exist")
        if receiver is None:
            return _status(False, "Receiver does not exist")
        found = [
            {"id": mid, "sender": sender_name, "receiver": receiver_name, "message": m["message"]}
            for mid, m in self.inbox.items()
            if m["sender_id"] == sender and m["receiver_id"] == receiver
        ]
        return (
            {"status": True, "messages": found}
            if found
            else _status(False, "No related message records found")
        )

    def search_messages(self, user_name: str, keyword: str) -> dict[str, Any]:
        uid = self._user_id(user_name)
        if uid is None:
            return _status(False, "User does not exist")
        found = [
            {"id": mid, "sender_id": m["sender_id"], "receiver_id": m["receiver_id"], "message": m["message"]}
            for mid, m in self.inbox.items()
            if uid in (m["sender_id"], m["receiver_id"]) and keyword.lower() in m["message"].lower()
        ]
        if not found:
            return _status(False, "No messages found containing the keyword")
        return {"status": True, "messages": found}

    def get_all_message_times_with_ids(self) -> dict[Any, Any]:
        if not self.logged_in:
            return _status(
                False,
                "Device not logged in, unable to retrieve all message times and their corresponding "
                "message IDs.",
            )
        # A message sent during the task has no `time`: the KeyError becomes the call's error, as there.
        return {mid: m["time"] for mid, m in self.inbox.items()}

    def _dated(self, pick_latest: bool) -> dict[str, Any]:
        word = "latest" if pick_latest else "earliest"
        if not self.logged_in:
            return _status(False, f"Device not logged in, unable to retrieve the {word} sent message ID.")
        if not self.inbox:
            return _status(False, "No message records found")
        best: tuple[datetime, Any] | None = None
        for mid, m in self.inbox.items():  # an undated message raises KeyError('time'), as there
            when = datetime.strptime(m["time"], "%Y-%m-%d")
            if best is None or ((when > best[0]) if pick_latest else (when < best[0])):
                best = (when, mid)
        assert best is not None
        return _status(True, f"The {word} message ID is {best[1]}", message_id=best[1])

    def get_latest_message_id(self) -> dict[str, Any]:
        return self._dated(True)

    def get_earliest_message_id(self) -> dict[str, Any]:
        return self._dated(False)


class ReminderApi(BaseApi):
    """Reminders with a capacity; ids count up from the number of starting reminders."""

    max_capacity: int
    reminder_list: dict[int, dict[str, Any]]
    reminder_id_counter: int

    def view_reminder_by_title(self, title: str) -> dict[str, Any]:
        if not self.logged_in:
            return _status(False, "The device is not logged in, so you cannot view notifications")
        for reminder in self.reminder_list.values():
            if reminder["title"] == title:
                return {"status": True, "reminder": reminder}
        return _status(False, f"No reminder found with the title '{title}'.")

    def add_reminder(self, title: str, description: str, time: str) -> dict[str, Any]:
        if not self.logged_in:
            return _status(False, "Device not logged in. Unable to add a new reminder.")
        if len(self.reminder_list) >= self.max_capacity:
            return _status(False, "Reminder capacity is full. Unable to add a new reminder.")
        self.reminder_id_counter += 1
        rid = self.reminder_id_counter
        self.reminder_list[rid] = {
            "reminder_id": rid,
            "title": title,
            "description": description,
            "time": time,
            "notified": False,
        }
        return _status(True, f"Reminder '{title}' was successfully added.")

    def delete_reminder(self, reminder_id: int) -> dict[str, Any]:
        if not self.logged_in:
            return _status(False, "Device not logged in. Unable to delete the specified reminder.")
        if reminder_id not in self.reminder_list:
            return _status(False, "Reminder ID does not exist.")
        del self.reminder_list[reminder_id]
        return _status(True, f"Reminder ID {reminder_id} was successfully deleted.")

    def view_all_reminders(self) -> dict[str, Any]:
        if not self.reminder_list:
            return _status(False, "No reminders found.")
        keep = ("title", "description", "time", "notified")
        return {"status": True, "reminders": [{k: r[k] for k in keep} for r in self.reminder_list.values()]}

    def search_reminders(self, keyword: str) -> dict[str, Any]:
        kw = keyword.lower()
        found = [
            r
            for r in self.reminder_list.values()
            if kw in r["title"].lower() or kw in r["description"].lower()
        ]
        return (
            {"status": True, "reminders": found} if found else _status(False, "No matching reminders found.")
        )


class FoodPlatform(BaseApi):
    """Food delivery: platform login needs Wi-Fi; an order needs login, known products and enough balance."""

    users: dict[str, dict[str, Any]]
    merchant_list: dict[str, dict[str, Any]]
    logged_in_users: list[str]
    orders: list[dict[str, Any]]

    def _load_scenario(self, config: dict[str, Any]) -> None:
        super()._load_scenario(config)
        self.logged_in_users = config.get("logged_in_users", [])

    def login_food_platform(self, username: str, password: str) -> dict[str, Any]:
        if not self.wifi:
            return _status(False, "Wi-Fi is not enabled, unable to login")
        if username not in self.users:
            return _status(False, "User does not exist")
        if self.users[username]["password"] != password:
            return _status(False, "Incorrect password")
        if username in self.logged_in_users:
            return _status(False, f"{username} is already logged in")
        self.logged_in_users.append(username)
        return _status(True, f"User {username} has successfully logged in!")

    def view_logged_in_users(self) -> dict[str, Any]:
        if not self.logged_in_users:
            return _status(False, "No users are currently logged in to the food platform")
        return {"status": True, "logged_in_users": self.logged_in_users}

    def check_balance(self, user_name: str) -> float:
        return self.users[user_name]["balance"] if user_name in self.users else 0.0

    def get_products(self, merchant_name: str) -> Any:
        merchant = self.merchant_list.get(merchant_name)
        return merchant["menu"] if merchant else _status(False, f"Merchant '{merchant_name}' does not exist")

    def add_food_delivery_order(self, username: str, merchant_name: str, items: list[dict[str, Any]]) -> dict:
        if username not in self.logged_in_users:
            return _status(False, f"User {username} is not logged in to the food platform")
        if merchant_name not in self.merchant_list:
            return _status(False, "Merchant does not exist")
        menu = self.merchant_list[merchant_name]["menu"]
        total, lines = 0.0, []
        for item in items:  # anything but a list of objects raises there too (`.get` of a non-dict)
            product, quantity = item.get("product"), item.get("quantity", 1)
            if not isinstance(quantity, int) or quantity <= 0:  # `True` counts as 1, as there
                return _status(False, f"Invalid quantity {quantity} for product {product}")
            price = next((p["price"] for p in menu if p["product"] == product), None)
            if price is None:
                return _status(False, f"Product {product} does not exist in {merchant_name}'s menu")
            total += price * quantity
            lines.append({"product": product, "quantity": quantity, "price_per_unit": price})
        if total > self.users[username]["balance"]:
            return _status(False, "Insufficient balance to place the order")
        self.users[username]["balance"] -= total
        self.orders.append(
            {"user_name": username, "merchant_name": merchant_name, "items": lines, "total_price": total}
        )
        return _status(
            True, f"Food delivery order successfully placed with {merchant_name}. Total amount: {total} yuan"
        )

    def view_orders(self, user_name: str) -> dict[str, Any]:
        mine = [o for o in self.orders if o["user_name"] == user_name]
        return {"status": True, "orders": mine} if mine else _status(False, "User has no order records")

    def search_orders(self, keyword: str) -> dict[str, Any]:
        kw = keyword.lower()
        found = [
            o
            for o in self.orders
            if kw in o["merchant_name"].lower() or any(kw in i["product"].lower() for i in o.get("items", []))
        ]
        return {"status": True, "orders": found} if found else _status(False, "No matching orders found")


App = BaseApi | Travel

APP_CLASSES: dict[str, type[App]] = {
    "BaseApi": BaseApi,
    "MessageApi": MessageApi,
    "ReminderApi": ReminderApi,
    "FoodPlatform": FoodPlatform,
    "Travel": Travel,
}


@dataclass(frozen=True)
class ClassSource:
    """What the checkout's source says about one scenario class: starting attributes, public methods."""

    defaults: dict[str, Any]
    methods: frozenset[str]


def _class_node(path: Path, class_name: str) -> ast.ClassDef | None:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    return next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)


def _init_literals(node: ast.ClassDef) -> dict[str, Any]:
    """Literal `self.x = ...` assignments in the class's `__init__`."""
    out: dict[str, Any] = {}
    init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
    for stmt in ast.walk(init) if init else ():
        target, value = None, None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        is_self = isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
        if is_self and target.value.id == "self":  # type: ignore[union-attr]
            try:
                out[target.attr] = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, RecursionError):
                continue
    return out


def _public_methods(node: ast.ClassDef) -> set[str]:
    return {f.name for f in node.body if isinstance(f, ast.FunctionDef) and not f.name.startswith("_")}


def class_source(root: Path, language: str, kind: str, class_name: str) -> ClassSource:
    """Starting attributes and public methods (its own and its scenario base classes') of one app class for
    `kind` (multi_step | multi_turn), from the checkout.

    ACEBench has moved these modules between releases, so the kind's own folder is tried first, then the
    other kind's (multi_step reuses multi_turn's base class), then the merged `model_inference/scenarios/`.
    """
    if class_name not in APP_CLASSES:
        raise ScenarioUnavailable(f"scenario class {class_name} is not implemented")
    other = "multi_turn" if kind == "multi_step" else "multi_step"
    for folder in (kind, other, "scenarios"):
        path = root / "model_inference" / folder / f"scenarios{language}" / _MODULE[class_name]
        node = _class_node(path, class_name) if path.is_file() else None
        if node is None:
            continue
        methods = _public_methods(node)
        for base in node.bases:
            if isinstance(base, ast.Name) and base.id in _MODULE:
                methods |= class_source(root, language, kind, base.id).methods
        return ClassSource(_init_literals(node), frozenset(methods))
    raise ScenarioUnavailable(f"source of scenario class {class_name} not found under {root}/model_inference")


class Scenario:
    """The involved app instances of one task, a call dispatcher, and the state ACEBench saves."""

    def __init__(self, apps: dict[str, App], methods: dict[str, frozenset[str]], kind: str) -> None:
        self.apps = apps
        self.methods = methods  # the public methods each class defines in the checkout
        self.kind = kind  # multi_step | multi_turn: they differ in what a failing call does to its step

    @classmethod
    def build(
        cls, root: Path, language: str, kind: str, involved: list[str], initial_config: dict[str, Any]
    ) -> Scenario:
        apps, methods = {}, {}
        for name in involved:
            source = class_source(root, language, kind, name)
            app = APP_CLASSES[name](source.defaults, language)
            # ACEBench loads the class's own config, then BaseApi's over it.
            app._load_scenario(copy.deepcopy(initial_config.get(name, {})))
            app._load_scenario(copy.deepcopy(initial_config.get("BaseApi", {})))
            apps[name], methods[name] = app, source.methods
        return cls(apps, methods, kind)

    def _has(self, name: str, cls: str, app: App) -> bool:
        return not name.startswith("_") and callable(getattr(app, name, None)) and name in self.methods[cls]

    def call(self, name: str, args: dict[str, Any]) -> Any:
        """One call as a step of its own (see `execute`)."""
        return self.execute([(name, args)])[0][0]

    def _call(self, name: str, args: dict[str, Any], previous: list[Any]) -> tuple[Any, bool]:
        """(result, raised): `name(**args)` on every involved app that has it, the last result kept. What
        raises there (a bad argument name or type, a missing key) comes back as ACEBench's error text; a
        name no involved app has answers with `previous` (the step's last reply), as there."""
        targets = [app for cls, app in self.apps.items() if self._has(name, cls, app)]
        if not targets:
            return (previous[-1], False) if previous else (UNBOUND_RESULT, True)
        result: Any = None
        for app in targets:
            try:
                result = getattr(app, name)(**args)
            except Exception as exc:  # any exception of the call is its result, as there
                return f"Error during execution: {exc}", True
        return result, False

    def execute(self, calls: list[tuple[str, dict[str, Any]]]) -> tuple[list[Any], bool]:
        """One step's calls in order: (results, whether the step counts as executed). In multi_step a
        failing call's error is its result and the step goes on; in multi_turn the step stops there,
        answers `MULTI_TURN_ERROR` alone, and leaves no state behind if no other step succeeds (ACEBench
        keeps the instances of steps that did not raise)."""
        results: list[Any] = []
        for name, args in calls:
            result, raised = self._call(name, args, results)
            if raised and self.kind == "multi_turn":
                return [MULTI_TURN_ERROR], False
            results.append(result)
        return results, True

    def state(self) -> list[dict[str, dict[str, Any]]]:
        """The saved attributes per class, through JSON as ACEBench stores them (int keys become strings)."""
        out = []
        for name, app in self.apps.items():
            saved = {k: getattr(app, k) for k in SAVED_ATTRS.get(name, ()) if hasattr(app, k)}
            out.append({name: json.loads(json.dumps(saved, default=str))})
        return out
