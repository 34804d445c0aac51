"""The simulated phone apps of ACEBench's agent tasks (device, messages, reminders, food delivery).

Behaviour is reimplemented from what ACEBench documents and its tasks need: the same preconditions (Wi-Fi,
device login, platform login, capacity, balance), the same state changes, and the same saved attributes
that its final-state check compares. The apps' starting data (users, inbox, reminders, merchants and menus)
is not ours to restate: it is read from the user's ACEBench checkout by parsing the scenario modules with
`ast` and taking the literal `self.<attr> = ...` assignments of each class's `__init__` (never importing or
running that code). A class whose source is not found, or that we do not implement (Travel), makes the task
skipped with the reason, rather than scored against invented data.

As in ACEBench, each involved class is its own instance with its own Wi-Fi / login flags, and a call is sent
to every involved instance that has the method (so `turn_on_wifi()` switches all of them on).
"""

from __future__ import annotations

import ast
import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

SAVED_ATTRS = {
    "BaseApi": ("wifi", "logged_in"),
    "MessageApi": ("inbox",),
    "ReminderApi": ("reminder_list",),
    "FoodPlatform": ("users", "logged_in_users", "orders"),
}
_MODULE = {
    "BaseApi": "phone_platform/base_api.py",
    "MessageApi": "phone_platform/message.py",
    "ReminderApi": "phone_platform/reminder.py",
    "FoodPlatform": "phone_platform/food_services.py",
}


class ScenarioUnavailable(LookupError):
    """A scenario class that cannot be run honestly here (unsupported, or its source data is missing)."""


def _status(ok: bool, message: str, **extra: Any) -> dict[str, Any]:
    return {"status": ok, "message": message, **extra}


class BaseApi:
    """Device state shared by every app: Wi-Fi and device login."""

    def __init__(self, defaults: dict[str, Any]) -> None:
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
        if sender is None or receiver is None:
            return _status(False, "Sender or receiver does not exist")
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
            {"id": mid, **m}
            for mid, m in self.inbox.items()
            if uid in (m["sender_id"], m["receiver_id"]) and keyword.lower() in m["message"].lower()
        ]
        return {"status": True, "messages": found} if found else _status(False, "No messages found")

    def get_all_message_times_with_ids(self) -> dict[Any, Any]:
        if not self.logged_in:
            return _status(False, "Device not logged in, unable to retrieve message times")
        return {mid: m.get("time") for mid, m in self.inbox.items()}

    def _dated(self, pick_latest: bool) -> dict[str, Any]:
        if not self.logged_in:
            return _status(False, "Device not logged in, unable to retrieve the message ID")
        if not self.inbox:
            return _status(False, "No message records found")
        # ACEBench compares dated messages only; one sent during the task has no time and breaks its
        # lookup with an error, which we report the same way.
        if any("time" not in m for m in self.inbox.values()):
            return _status(False, "Error during execution: a message has no time")
        dated = [(datetime.strptime(m["time"], "%Y-%m-%d"), mid) for mid, m in self.inbox.items()]
        best = dated[0]
        for when, mid in dated[1:]:
            if (when > best[0]) if pick_latest else (when < best[0]):
                best = (when, mid)
        word = "latest" if pick_latest else "earliest"
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
        menu = {p["product"]: p["price"] for p in self.merchant_list[merchant_name]["menu"]}
        total, lines = 0.0, []
        for item in items if isinstance(items, list) else []:
            product, quantity = item.get("product"), item.get("quantity", 1)
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
                return _status(False, f"Invalid quantity {quantity} for product {product}")
            if product not in menu:
                return _status(False, f"Product {product} does not exist in {merchant_name}'s menu")
            total += menu[product] * quantity
            lines.append({"product": product, "quantity": quantity, "price_per_unit": menu[product]})
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


APP_CLASSES: dict[str, type[BaseApi]] = {
    "BaseApi": BaseApi,
    "MessageApi": MessageApi,
    "ReminderApi": ReminderApi,
    "FoodPlatform": FoodPlatform,
}


def _init_literals(path: Path, class_name: str) -> dict[str, Any] | None:
    """Literal `self.x = ...` assignments in `class_name.__init__` of a Python file, read with `ast`."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for fn in node.body:
                if isinstance(fn, ast.FunctionDef) and fn.name == "__init__":
                    out: dict[str, Any] = {}
                    for stmt in ast.walk(fn):
                        target, value = None, None
                        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                            target, value = stmt.targets[0], stmt.value
                        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                            target, value = stmt.target, stmt.value
                        if (
                            isinstance(target, ast.Attribute)
                            and isinstance(target.value, ast.Name)
                            and target.value.id == "self"
                        ):
                            try:
                                out[target.attr] = ast.literal_eval(value)
                            except (ValueError, TypeError, SyntaxError, RecursionError):
                                continue
                    return out
    return None


def scenario_defaults(root: Path, language: str, kind: str, class_name: str) -> dict[str, Any]:
    """Starting attributes of one app class for `kind` (multi_step | multi_turn) from the checkout.

    ACEBench has moved these modules between releases, so the kind's own folder is tried first, then the
    other kind's (multi_step reuses multi_turn's base class), then the merged `model_inference/scenarios/`.
    """
    if class_name not in APP_CLASSES:
        raise ScenarioUnavailable(f"scenario class {class_name} is not implemented")
    other = "multi_turn" if kind == "multi_step" else "multi_step"
    rel = _MODULE[class_name]
    for folder in (kind, other, "scenarios"):
        path = root / "model_inference" / folder / f"scenarios{language}" / rel
        if path.is_file():
            found = _init_literals(path, class_name)
            if found is not None:
                return found
    raise ScenarioUnavailable(f"source of scenario class {class_name} not found under {root}/model_inference")


class Scenario:
    """The involved app instances of one task, a call dispatcher, and the state ACEBench saves."""

    def __init__(self, apps: dict[str, BaseApi]) -> None:
        self.apps = apps

    @classmethod
    def build(
        cls, root: Path, language: str, kind: str, involved: list[str], initial_config: dict[str, Any]
    ) -> Scenario:
        apps = {}
        for name in involved:
            app = (
                APP_CLASSES[name](scenario_defaults(root, language, kind, name))
                if name in APP_CLASSES
                else None
            )
            if app is None:
                raise ScenarioUnavailable(f"scenario class {name} is not implemented")
            # ACEBench loads the class's own config, then BaseApi's over it.
            app._load_scenario(copy.deepcopy(initial_config.get(name, {})))
            app._load_scenario(copy.deepcopy(initial_config.get("BaseApi", {})))
            apps[name] = app
        return cls(apps)

    def call(self, name: str, args: dict[str, Any]) -> Any:
        """Run `name(**args)` on every involved app that has it; the last result is returned."""
        targets = [
            a for a in self.apps.values() if not name.startswith("_") and callable(getattr(a, name, None))
        ]
        if not targets:
            return f"Error during execution: name '{name}' is not defined"
        result: Any = None
        for app in targets:
            try:
                result = getattr(app, name)(**args)
            except (TypeError, KeyError, ValueError, AttributeError) as exc:
                return f"Error during execution: {exc}"
        return result

    def state(self) -> list[dict[str, dict[str, Any]]]:
        """The saved attributes per class, through JSON as ACEBench stores them (int keys become strings)."""
        out = []
        for name, app in self.apps.items():
            saved = {k: getattr(app, k) for k in SAVED_ATTRS.get(name, ()) if hasattr(app, k)}
            out.append({name: json.loads(json.dumps(saved, default=str))})
        return out
