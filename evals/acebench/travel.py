"""ACEBench's `Travel` scenario (flights, reservations, balances), reimplemented call for call.

The starting users, flights and reservations come from the checkout (see `evals.acebench.apps`); what is
here is the behaviour, matched to ACEBench's class on every path its agent tasks can reach:

- a reservation is paid in full at booking (ticket + 50 per bag over the free allowance of the membership
  level and cabin), from `cash` or `bank`; the flight loses a seat; ids are `res_<count + 1>`;
- authentication failures do not stop a booking there: the error reply is itself a "user", and the call
  then fails on the missing `membership_level` (a KeyError, reported as the call's error), as there;
- a cabin change pays or refunds the difference at the *old* flight's prices, an added bag is charged over
  the allowance; a refused payment is reported but the change is kept, as there;
- a cancellation refunds to the cash balance (in full when the airline cancelled or more than 24 hours
  before departure, else less 10%) and leaves the reservation in place, as there; "now" is ACEBench's
  fixed 2024-07-14 06:00.

Replies are ACEBench's own words and shapes (its English class's), since an agent reads them; cabin names
and the airline-cancellation reason follow the data's language, as the Chinese class compares them.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

NOW = datetime(2024, 7, 14, 6, 0, 0)
BAG_FEE = 50
# The words the class compares arguments with, per data language (the Chinese class uses Chinese cabin
# names and cancellation reason; its replies are in Chinese too, ours stay in English).
ECONOMY = {"en": "Economy Class", "zh": "经济舱"}
BUSINESS = {"en": "Business Class", "zh": "商务舱"}
AIRLINE_CANCELLED = {"en": "The airline has canceled the flight.", "zh": "航空公司取消航班"}
_FREE = {"regular": (1, 2), "silver": (2, 3), "gold": (3, 3)}  # free bags: (economy, business)
_TIME = "%Y-%m-%d %H:%M:%S"
_FLIGHT_FIELDS = (
    "flight_no",
    "origin",
    "destination",
    "depart_time",
    "arrival_time",
    "status",
    "seats_available",
    "economy_price",
    "business_price",
)
_BAD_LOGIN = {"status": "error", "message": "Incorrect username or password."}


def _at(text: str) -> datetime:
    return datetime.strptime(text, _TIME)


class Travel:
    """Users with cash and bank balances, flights, reservations."""

    users: dict[str, dict[str, Any]]
    flights: list[dict[str, Any]]
    reservations: list[dict[str, Any]]

    def __init__(self, defaults: dict[str, Any], language: str = "en") -> None:
        self.users, self.flights, self.reservations = {}, [], []
        for key, val in copy.deepcopy(defaults).items():
            setattr(self, key, val)
        self._economy, self._business = ECONOMY[language], BUSINESS[language]
        self._airline_cancelled = AIRLINE_CANCELLED[language]
        self._free_bags = {
            level: {self._economy: economy, self._business: business}
            for level, (economy, business) in _FREE.items()
        }

    def _price(self, flight: dict[str, Any], cabin: str) -> int:
        """The ticket: economy for the economy cabin's name, business for anything else, as there."""
        return flight["economy_price"] if cabin == self._economy else flight["business_price"]

    def _load_scenario(self, config: dict[str, Any]) -> None:
        """The task's initial config does not change this app (it has no Wi-Fi or login), as there."""

    def _flight(self, flight_no: str, available_only: bool = False) -> dict[str, Any] | None:
        return next(
            (
                f
                for f in self.flights
                if f["flight_no"] == flight_no and (not available_only or f["status"] == "available")
            ),
            None,
        )

    def _reservation(self, user_id: str, reservation_id: str) -> dict[str, Any] | None:
        key = (reservation_id, user_id)
        return next((r for r in self.reservations if (r["reservation_id"], r["user_id"]) == key), None)

    def _booking(
        self, user_id: str, reservation_id: str, no_reservation: str, no_flight: str
    ) -> tuple[dict[str, Any], dict[str, Any]] | str:
        """The user's reservation and its flight, or the reply for whichever is missing."""
        reservation = self._reservation(user_id, reservation_id)
        if not reservation:
            return no_reservation
        flight = self._flight(reservation["flight_no"])
        return (reservation, flight) if flight else no_flight

    def _charge(self, user: dict[str, Any], method: str, amount: float, paid: str, refused: str) -> str:
        """Take `amount` from the balance; a refused payment is only reported (the change stays), as there."""
        return paid if self.update_balance(user, method, -amount) else refused

    def get_flight_details(self, origin: str | None = None, destination: str | None = None) -> Any:
        found = [
            f
            for f in self.flights
            if (not origin or f["origin"] == origin) and (not destination or f["destination"] == destination)
        ]
        if not found:
            return "There are no direct flights that meet the criteria."
        return [{k: f[k] for k in _FLIGHT_FIELDS} for f in found]

    def get_user_details(self, user_id: str, password: str) -> dict[str, Any]:
        user = self.users.get(user_id)
        if user and user["password"] == password:
            return {k: v for k, v in user.items() if k != "password"}
        return dict(_BAD_LOGIN)

    def get_reservation_details(self, reservation_id: str | None = None, user_id: str | None = None) -> Any:
        if reservation_id:
            mine = [r for r in self.reservations if r["reservation_id"] == reservation_id]
        elif user_id:
            mine = [r for r in self.reservations if r["user_id"] == user_id]
        else:
            return {"status": "error", "message": "Please provide a valid reservation ID or user ID"}
        return [{**r, "flight_info": self._flight(r["flight_no"])} for r in mine]

    def authenticate_user(self, user_id: str, password: str) -> dict[str, Any]:
        """The user's own record (not a copy), or the error reply."""
        user = self.users.get(user_id)
        return user if user and user["password"] == password else dict(_BAD_LOGIN)

    def get_baggage_allowance(self, membership_level: str, cabin_class: str) -> int:
        return self._free_bags.get(membership_level, {}).get(cabin_class, 0)

    def find_transfer_flights(self, origin_city: str, transfer_city: str, destination_city: str) -> Any:
        def legs(origin: str, destination: str) -> list[dict[str, Any]]:
            return [
                f
                for f in self.flights
                if f["origin"] == origin and f["destination"] == destination and f["status"] == "available"
            ]

        found = [
            {"first_leg": first, "second_leg": second}
            for first in legs(origin_city, transfer_city)
            for second in legs(transfer_city, destination_city)
            if _at(first["arrival_time"]) < _at(second["depart_time"])
        ]
        return found or "No connecting flights that meet the criteria were found."

    def calculate_baggage_fee(self, membership_level: str, cabin_class: str, baggage_count: int) -> int:
        """Unknown levels or cabins raise KeyError, as there."""
        return max(baggage_count - self._free_bags[membership_level][cabin_class], 0) * BAG_FEE

    def update_balance(self, user: dict[str, Any], payment_method: str, amount: float) -> bool:
        """Add `amount` (negative: pay) to the chosen balance; False, unchanged, if it would go below 0."""
        field = {"cash": "cash_balance", "bank": "bank_balance"}.get(payment_method)
        if field is not None:
            if user[field] + amount < 0:
                return False
            user[field] += amount
        return True

    def reserve_flight(
        self,
        user_id: str,
        password: str,
        flight_no: str,
        cabin: str,
        payment_method: str,
        baggage_count: int,
    ) -> str:
        user = self.authenticate_user(user_id, password)
        flight = self._flight(flight_no, available_only=True)
        # An unknown flight fails on its price (TypeError), a failed login on its level (KeyError), as there.
        total = self._price(flight, cabin)  # type: ignore[arg-type]
        total += self.calculate_baggage_fee(user["membership_level"], cabin, baggage_count)
        if payment_method not in ("cash", "bank"):
            return "Invalid payment method"
        field = f"{payment_method}_balance"
        if total > self.users[user_id][field]:
            return (
                f"Your {payment_method} balance is insufficient. "
                "Please consider using another payment method."
            )
        self.users[user_id][field] -= total
        flight["seats_available"] -= 1  # type: ignore[index]
        reservation_id = f"res_{len(self.reservations) + 1}"
        self.reservations.append(
            {
                "reservation_id": reservation_id,
                "user_id": user_id,
                "flight_no": flight_no,
                "payment_method": payment_method,
                "cabin": cabin,
                "baggage": baggage_count,
            }
        )
        return (
            f"Booking successful. Reservation ID: {reservation_id}. Total cost: {total} yuan "
            "(including baggage fees)."
        )

    def modify_flight(
        self,
        user_id: str,
        reservation_id: str,
        new_flight_no: str | None = None,
        new_cabin: str | None = None,
        add_baggage: int = 0,
        new_payment_method: str | None = None,
    ) -> str:
        found = self._booking(
            user_id,
            reservation_id,
            "Reservation not found or user ID does not match.",
            "Flight information not found.",
        )
        if isinstance(found, str):
            return found
        reservation, flight = found
        payment_method = new_payment_method or reservation["payment_method"]
        user = self.users[user_id]
        done: list[str] = []
        if new_flight_no and new_flight_no != reservation["flight_no"]:
            new_flight = self._flight(new_flight_no)
            if not (
                new_flight
                and new_flight["origin"] == flight["origin"]
                and new_flight["destination"] == flight["destination"]
            ):
                return "Flight change failed: Invalid new flight number or destination does not match."
            reservation["flight_no"] = new_flight_no
            done.append("Flight number has been changed.")
        if new_cabin and new_cabin != reservation.get("cabin"):
            difference = self.calculate_price_difference(flight, reservation["cabin"], new_cabin)
            reservation["cabin"] = new_cabin
            if difference > 0:
                done.append(
                    self._charge(
                        user,
                        payment_method,
                        difference,
                        f"Cabin change successful. Price difference paid: {difference}.",
                        "Insufficient balance to pay the cabin price difference.",
                    )
                )
            elif difference < 0:
                self.update_balance(user, payment_method, -difference)
                done.append(f"Cabin change successful. Price difference refunded: {-difference}.")
        if add_baggage > 0:
            bags = reservation.get("baggage", 0) + add_baggage
            cost = max(0, bags - self.get_baggage_allowance(user["membership_level"], reservation["cabin"]))
            cost *= BAG_FEE
            if cost > 0:
                done.append(
                    self._charge(
                        user,
                        payment_method,
                        cost,
                        f"Baggage has been added. Additional fee to be paid: {cost}.",
                        "Insufficient balance to pay the additional baggage fees.",
                    )
                )
            reservation["baggage"] = bags
        return " ".join(done or ["Modification completed with no additional fees."])

    def cancel_reservation(self, user_id: str, reservation_id: str, reason: str) -> str:
        user = self.users.get(user_id)
        if not user:
            return "Invalid user ID."
        found = self._booking(
            user_id,
            reservation_id,
            "Invalid reservation ID or it does not belong to the user.",
            "Invalid flight information.",
        )
        if isinstance(found, str):
            return found
        reservation, flight = found
        departs = _at(flight["depart_time"])
        if NOW > departs:
            return "The flight segment has been used and cannot be canceled."
        price = self._price(flight, reservation["cabin"])
        if reason == self._airline_cancelled:
            self.process_refund(user, price)
            return (
                "The flight has been canceled. Your reservation will be canceled free of charge, and "
                f"{price} yuan has been refunded."
            )
        if departs - NOW > timedelta(days=1):
            self.process_refund(user, price)
            return (
                "More than 24 hours before departure. Free cancellation successful, "
                f"{price} yuan has been refunded."
            )
        fee = price * 0.1
        self.process_refund(user, price - fee)
        return (
            f"Less than 24 hours before departure. A cancellation fee of {fee} yuan has been deducted, and "
            f"{price - fee} yuan has been refunded."
        )

    def process_refund(self, user: dict[str, Any], amount: float) -> None:
        """Refunds go to the cash balance, whatever paid."""
        user["cash_balance"] += amount

    def calculate_price_difference(self, flight: dict[str, Any], old_cabin: str, new_cabin: str) -> float:
        prices = {self._economy: flight["economy_price"], self._business: flight["business_price"]}
        return prices.get(new_cabin, 0) - prices.get(old_cabin, 0)
