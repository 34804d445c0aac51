"""The ACEBench scenario apps behave like ACEBench's own classes, call for call (replies, errors, state).

Starting data comes from the hand-written stand-in modules of tests/evals/fixtures/acebench (invented
users, inbox, menus, flights); the expected replies are ACEBench's, as its scenario classes give them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.acebench.apps import Scenario

FIXTURE = Path(__file__).parent / "fixtures" / "acebench"


def phone(wifi: bool = True, logged_in: bool = True) -> Scenario:
    involved = ["BaseApi", "MessageApi", "ReminderApi", "FoodPlatform"]
    config = {"BaseApi": {"wifi": wifi, "logged_in": logged_in}}
    return Scenario.build(FIXTURE, "en", "multi_step", involved, config)


def travel() -> Scenario:
    return Scenario.build(FIXTURE, "en", "multi_step", ["Travel"], {})


def state_of(sc: Scenario, cls: str) -> dict:
    return next(s[cls] for s in sc.state() if cls in s)


def test_a_sent_message_has_no_time_and_the_date_lookups_then_raise_as_there():
    sc = phone()
    sc.call("delete_message", {"message_id": 3})  # the inbox starts full (capacity 3)
    assert sc.call("send_message", {"sender_name": "Ana", "receiver_name": "Ben", "message": "Hi"}) == {
        "status": True,
        "message": "Message successfully sent to Ben.",
    }
    assert state_of(sc, "MessageApi")["inbox"]["4"] == {
        "sender_id": "U1",
        "receiver_id": "U2",
        "message": "Hi",
    }
    assert sc.call("get_latest_message_id", {}) == "Error during execution: 'time'"
    assert sc.call("get_all_message_times_with_ids", {}) == "Error during execution: 'time'"


def test_message_lookups_reply_in_acebench_words_and_shapes():
    sc = phone()
    assert sc.call("get_earliest_message_id", {}) == {
        "status": True,
        "message": "The earliest message ID is 3",
        "message_id": 3,
    }
    assert sc.call("view_messages_between_users", {"sender_name": "Zed", "receiver_name": "Ben"}) == {
        "status": False,
        "message": "Sender does not exist",
    }
    assert sc.call("view_messages_between_users", {"sender_name": "Ana", "receiver_name": "Zed"})[
        "message"
    ] == ("Receiver does not exist")
    found = sc.call("search_messages", {"user_name": "Ana", "keyword": "lunch"})
    assert found == {  # no time in a search hit
        "status": True,
        "messages": [{"id": 1, "sender_id": "U1", "receiver_id": "U2", "message": "Lunch on Friday?"}],
    }
    assert sc.call("search_messages", {"user_name": "Ana", "keyword": "zzz"})["message"] == (
        "No messages found containing the keyword"
    )
    logged_out = phone(logged_in=False)
    assert logged_out.call("get_latest_message_id", {})["message"] == (
        "Device not logged in, unable to retrieve the latest sent message ID."
    )


def test_a_full_inbox_refuses_and_delete_frees_a_slot():
    sc = phone()  # capacity 3, three messages
    one = {"sender_name": "Ana", "receiver_name": "Ben", "message": "x"}
    assert sc.call("send_message", one)["message"].startswith("Inbox capacity is full")
    assert sc.call("delete_message", {"message_id": 3})["status"] is True
    assert sc.call("send_message", one)["status"] is True
    assert sorted(state_of(sc, "MessageApi")["inbox"]) == ["1", "2", "4"]  # ids count on from the counter


def test_food_orders_take_quantity_true_as_one_and_refuse_a_non_list_by_its_error():
    sc = phone()
    sc.call("login_food_platform", {"username": "Ana", "password": "pw-ana"})
    order = {"username": "Ana", "merchant_name": "Noodle Bar"}
    assert sc.call(
        "add_food_delivery_order", {**order, "items": [{"product": "Veggie Noodles", "quantity": True}]}
    )["status"]
    assert state_of(sc, "FoodPlatform")["users"]["Ana"]["balance"] == 78.0
    assert sc.call("add_food_delivery_order", {**order, "items": {"product": "Veggie Noodles"}}) == (
        "Error during execution: 'str' object has no attribute 'get'"
    )
    assert sc.call("add_food_delivery_order", {**order, "items": [{"product": "Pizza", "quantity": 1}]}) == {
        "status": False,
        "message": "Product Pizza does not exist in Noodle Bar's menu",
    }
    assert len(state_of(sc, "FoodPlatform")["orders"]) == 1


def test_only_methods_the_checkout_class_defines_can_be_called():
    sc = phone()
    # Our ReminderApi also has the Chinese classes' `search_reminders`; the English stand-in does not.
    assert sc.call("search_reminders", {"keyword": "rent"}) == (
        "Error during execution: cannot access local variable 'func_call_result' where it is not associated "
        "with a value"
    )
    # Later in a step, a function no involved class has repeats the step's previous reply, as there.
    results, _ = sc.execute([("view_all_reminders", {}), ("search_reminders", {"keyword": "rent"})])
    assert results[1] == results[0] and results[0]["status"] is True
    assert sc.call("send_message", {"sender_name": "Ana"}).startswith(
        "Error during execution: MessageApi.send_message() missing 2 required positional arguments"
    )


def test_travel_booking_pays_ticket_and_bags_and_takes_a_seat():
    sc = travel()
    reply = sc.call(
        "reserve_flight",
        {
            "user_id": "u1",
            "password": "pw1",
            "flight_no": "XF10",
            "cabin": "Economy Class",
            "payment_method": "cash",
            "baggage_count": 3,
        },
    )
    assert (
        reply == "Booking successful. Reservation ID: res_2. Total cost: 400 yuan (including baggage fees)."
    )
    state = state_of(sc, "Travel")
    assert state["users"]["u1"]["cash_balance"] == 500.0  # 300 + 2 bags over the 1 free, at 50
    assert state["reservations"][-1] == {
        "reservation_id": "res_2",
        "user_id": "u1",
        "flight_no": "XF10",
        "payment_method": "cash",
        "cabin": "Economy Class",
        "baggage": 3,
    }
    assert (
        sc.call("get_flight_details", {"origin": "Lisbon", "destination": "Faro"})[0]["seats_available"] == 3
    )


@pytest.mark.parametrize(
    ("args", "reply"),
    [
        ({"password": "wrong"}, "Error during execution: 'membership_level'"),  # a failed login books nothing
        ({"flight_no": "NOPE"}, "Error during execution: 'NoneType' object is not subscriptable"),
        ({"payment_method": "card"}, "Invalid payment method"),
        (
            {"cabin": "Business Class", "payment_method": "cash", "baggage_count": 7},  # 700 + 250
            "Your cash balance is insufficient. Please consider using another payment method.",
        ),
    ],
)
def test_travel_booking_failures_are_acebench_replies_and_change_nothing(args, reply):
    sc = travel()
    before = sc.state()
    booking = {
        "user_id": "u1",
        "password": "pw1",
        "flight_no": "XF10",
        "cabin": "Economy Class",
        "payment_method": "bank",
        "baggage_count": 1,
    }
    assert sc.call("reserve_flight", {**booking, **args}) == reply
    assert sc.state() == before


def test_travel_changes_pay_at_the_old_flights_prices_and_cancellations_keep_the_reservation():
    sc = travel()
    change = {"user_id": "u2", "reservation_id": "res_1"}
    assert sc.call("modify_flight", {**change, "new_flight_no": "XF20"}) == (
        "Flight change failed: Invalid new flight number or destination does not match."
    )
    # XF11 -> XF10 (same route), then Business at XF11's prices: 600 - 250 from the bank.
    assert sc.call("modify_flight", {**change, "new_flight_no": "XF10", "new_cabin": "Business Class"}) == (
        "Flight number has been changed. Cabin change successful. Price difference paid: 350."
    )
    assert state_of(sc, "Travel")["users"]["u2"]["bank_balance"] == 150.0
    assert sc.call("modify_flight", {**change, "add_baggage": 3}) == (
        "Baggage has been added. Additional fee to be paid: 50."  # gold, business: 3 free of 4
    )
    refund = sc.call("cancel_reservation", {**change, "reason": "Change of plans."})
    assert (
        refund
        == "More than 24 hours before departure. Free cancellation successful, 700 yuan has been refunded."
    )
    state = state_of(sc, "Travel")
    assert state["users"]["u2"]["cash_balance"] == 800.0  # refunds go to cash
    assert state["reservations"][0]["flight_no"] == "XF10"  # still there, as in ACEBench


def test_travel_late_and_airline_cancellations():
    late = travel()  # XF11 leaves 14 hours after ACEBench's fixed "now"
    assert late.call(
        "cancel_reservation", {"user_id": "u2", "reservation_id": "res_1", "reason": "Ill."}
    ) == (
        "Less than 24 hours before departure. A cancellation fee of 25.0 yuan has been deducted, and 225.0 "
        "yuan has been refunded."
    )
    airline = travel()
    reason = "The airline has canceled the flight."
    assert airline.call("cancel_reservation", {"user_id": "u2", "reservation_id": "res_1", "reason": reason})[
        :30
    ] == ("The flight has been canceled. ")
    assert state_of(airline, "Travel")["users"]["u2"]["cash_balance"] == 350.0
    assert travel().call(
        "cancel_reservation", {"user_id": "u1", "reservation_id": "res_1", "reason": "x"}
    ) == ("Invalid reservation ID or it does not belong to the user.")


def test_travel_transfers_pair_every_first_leg_landing_before_a_second_leg_leaves():
    sc = travel()
    found = sc.call(
        "find_transfer_flights",
        {"origin_city": "Lisbon", "transfer_city": "Faro", "destination_city": "Porto"},
    )
    assert [(t["first_leg"]["flight_no"], t["second_leg"]["flight_no"]) for t in found] == [
        ("XF10", "XF20"),
        ("XF11", "XF20"),
    ]
    back = {"origin_city": "Faro", "transfer_city": "Porto", "destination_city": "Lisbon"}
    assert (
        sc.call("find_transfer_flights", back) == "No connecting flights that meet the criteria were found."
    )
    assert sc.call("get_user_details", {"user_id": "u1", "password": "pw1"}) == {
        "user_name": "Ana",
        "cash_balance": 900.0,
        "bank_balance": 3000.0,
        "membership_level": "regular",
    }


def test_a_failing_call_ends_a_multi_turn_step_but_not_a_multi_step_one():
    calls = [
        ("delete_message", {"message_id": 3}),
        ("send_message", {"sender_name": "Ana"}),  # raises: arguments missing
        ("delete_message", {"message_id": 2}),
    ]
    config = {"BaseApi": {"wifi": True, "logged_in": True}}
    step = Scenario.build(FIXTURE, "en", "multi_step", ["BaseApi", "MessageApi"], config)
    results, counted = step.execute(calls)
    assert counted and results[1].startswith("Error during execution: MessageApi.send_message() missing")
    assert sorted(state_of(step, "MessageApi")["inbox"]) == ["1"]
    turn = Scenario.build(FIXTURE, "en", "multi_turn", ["BaseApi", "MessageApi"], config)
    assert turn.execute(calls) == (["Error during execution: {str(e)}"], False)  # ACEBench's literal text
    assert sorted(state_of(turn, "MessageApi")["inbox"]) == ["1", "2"]  # the third call never ran
