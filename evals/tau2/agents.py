"""tau2 agents and users played by our `ChatBackend`s, plus the gold-replay agents and the scripted user.

tau2's orchestrator is synchronous and talks to `BaseAgent` / `BaseUser` objects holding tau2 messages;
our models are async `ChatBackend`s speaking OpenAI-format dicts. The classes here translate both ways and
keep everything else tau2's own: the agent's and user's system prompts (policy, instructions, the user
simulation guidelines), the message bookkeeping in tau2's state objects, tau2's stop tokens.

- `BackendAgent` (conversational mode) subclasses tau2's `LLMAgent` and `BackendSoloAgent` (solo mode)
  subclasses `LLMSoloAgent`: the orchestrator insists on an `LLMSoloAgent` in solo mode, and subclassing
  reuses tau2's prompts (the solo one carries the ticket and the `done` stop tool) unchanged.
- `BackendUser` subclasses tau2's `UserSimulator`: same system prompt and role flipping, our backend
  instead of litellm, so the user simulator can be any OpenAI-compatible endpoint.
- `GoldReplayAgent` / `GoldReplaySoloAgent` emit the task's gold actions in order, then close;
  `ScriptedUser` states the task instructions once and stops at the agent's first text reply. These exist
  for tests and for the gold-replay ceiling only, never for reported benchmark scores.

Backend calls run on one event loop owned by the run (`LoopThread`): the orchestrators run in worker
threads, and an `OpenAIChatBackend` binds its client and concurrency bound to the loop it first runs in.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from envgen.llm.backends import ChatBackend, arguments_dict
from evals.tau2.compat import load_tau2
from evals.tau2.harness import gold_actions

load_tau2()

from tau2.agent.base import AgentError, LocalAgent, ValidAgentInputMessage  # noqa: E402
from tau2.agent.llm_agent import LLMAgent, LLMAgentState, LLMSoloAgent  # noqa: E402
from tau2.data_model.message import (  # noqa: E402
    AssistantMessage,
    Message,
    MultiToolMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from tau2.data_model.tasks import Action, Task  # noqa: E402
from tau2.environment.tool import Tool  # noqa: E402
from tau2.user.base import STOP, BaseUser, UserError, UserState, ValidUserInputMessage  # noqa: E402
from tau2.user.user_simulator import UserSimulator  # noqa: E402

T = TypeVar("T")

SCRIPTED_USER = "scripted:instructions-once"
GOLD_AGENT = "gold-replay"


class LoopThread:
    """One asyncio loop on a daemon thread, for synchronous callers (tau2's orchestrator) to await on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="tau2-backends", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the loop and block the calling thread until it finishes."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self, backends: list[Any]) -> None:
        """Close the backends' connection pools inside the loop they were opened in, then stop the loop."""
        for backend in backends:
            aclose = getattr(backend, "aclose", None)
            if aclose is not None and getattr(backend, "_loop", None) is self.loop:
                self.run(aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


# --- messages -------------------------------------------------------------------------------------------


def openai_tools(tools: list[Tool] | None) -> list[dict[str, Any]]:
    """tau2 tools as OpenAI function tools (tau2's own schema rendering)."""
    return [tool.openai_schema for tool in tools or []]


def to_openai_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """tau2 messages as OpenAI chat messages, in the shape our rollouts send (tool messages carry `name`).

    Tool-call arguments become JSON text, assistant tool-call turns get `""` content (our chat template
    renders `None` literally), and a `MultiToolMessage` is unpacked into its tool messages.
    """
    out: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for message in messages:
        parts = message.tool_messages if isinstance(message, MultiToolMessage) else [message]
        for m in parts:
            if isinstance(m, SystemMessage):
                out.append({"role": "system", "content": m.content or ""})
            elif isinstance(m, ToolMessage):
                out.append(
                    {
                        "role": "tool",
                        "tool_call_id": m.id,
                        "name": call_names.get(m.id, ""),
                        "content": m.content or "",
                    }
                )
            elif isinstance(m, (AssistantMessage, UserMessage)):
                entry: dict[str, Any] = {"role": m.role, "content": m.content or ""}
                if m.tool_calls:
                    entry["tool_calls"] = [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                        }
                        for c in m.tool_calls
                    ]
                    call_names.update({c.id: c.name for c in m.tool_calls})
                out.append(entry)
            else:
                raise TypeError(f"not a tau2 message: {type(m).__name__}")
    return out


def _tool_calls(
    reply: dict[str, Any], requestor: str, taken: set[str], error: type[Exception]
) -> list[ToolCall]:
    """The reply's tool calls as tau2 `ToolCall`s, with ids made unique within the episode.

    Our local backends number calls from `call_1` in every reply; tau2 pairs calls and results by id when
    it replays a trajectory, and some endpoints reject repeated ids, so a repeated id gets a suffix.
    Arguments that are not a JSON object cannot be a tau2 call: that is the model's error (`error`).
    """
    calls = []
    for index, call in enumerate(reply.get("tool_calls") or []):
        function = call.get("function") or {}
        arguments = arguments_dict(function.get("arguments", "{}"))
        if arguments is None:
            raise error(f"tool call {function.get('name')!r} has arguments that are not a JSON object")
        call_id = call.get("id") or f"call_{index + 1}"
        while call_id in taken:
            call_id = f"{call_id}_{len(taken)}"
        taken.add(call_id)
        calls.append(
            ToolCall(id=call_id, name=function.get("name") or "", arguments=arguments, requestor=requestor)
        )
    return calls


def reply_to_assistant(reply: dict[str, Any], taken: set[str]) -> AssistantMessage:
    """An OpenAI-format reply from our backend as a tau2 `AssistantMessage` (raises `AgentError` if empty).

    An empty reply is the model's failure; tau2's own `generate` would hand it on and the orchestrator's
    `validate()` would raise a bare `ValueError`, so it is raised as tau2's `AgentError` here, which the
    runner records as an `agent_error` termination (reward 0), like tau2's skip-failed-samples path.
    """
    calls = _tool_calls(reply, "assistant", taken, AgentError)
    content = reply.get("content") or None
    message = AssistantMessage(role="assistant", content=content, tool_calls=calls or None)
    if not message.has_text_content() and not message.is_tool_call():
        raise AgentError("the agent's reply is empty (no text, no tool calls)")
    return message


def _receive(state: LLMAgentState | UserState, message: ValidAgentInputMessage | None) -> None:
    """Append an incoming message to tau2's state the way tau2's own agents and users do."""
    if isinstance(message, MultiToolMessage):
        state.messages.extend(message.tool_messages)
    elif message is not None:
        state.messages.append(message)


def _taken_ids(messages: list[Message]) -> set[str]:
    """Tool-call ids already used in a conversation (a task's message history may hold some)."""
    return {
        c.id for m in messages if isinstance(m, (AssistantMessage, UserMessage)) for c in m.tool_calls or []
    }


# --- agents over our backends ------------------------------------------------------------------------------


class _BackendCalls:
    """What the two backend agents share: calling the backend on the run's loop and the seed plumbing."""

    backend: ChatBackend
    bridge: LoopThread
    sampling: dict[str, Any]

    def _setup(self, backend: ChatBackend, bridge: LoopThread, sampling: dict[str, Any] | None) -> None:
        self.backend, self.bridge, self.sampling = backend, bridge, dict(sampling or {})
        self._ids: set[str] = set()

    def set_seed(self, seed: int) -> None:
        """tau2 seeds each trial; it goes out as the OpenAI `seed` parameter (local backends ignore it)."""
        self.sampling["seed"] = seed

    def _next(self, state: LLMAgentState, tools: list[Tool]) -> AssistantMessage:
        self._ids |= _taken_ids(state.messages)
        messages = to_openai_messages(state.system_messages + state.messages)
        reply = self.bridge.run(self.backend.complete(messages, openai_tools(tools), **self.sampling))
        return reply_to_assistant(reply, self._ids)


class BackendAgent(_BackendCalls, LLMAgent):
    """tau2's conversational agent (its system prompt, its state) answering through one of our backends."""

    def __init__(
        self,
        tools: list[Tool],
        domain_policy: str,
        backend: ChatBackend,
        bridge: LoopThread,
        sampling: dict[str, Any] | None = None,
    ) -> None:
        LLMAgent.__init__(self, tools=tools, domain_policy=domain_policy, llm=backend.name)
        self._setup(backend, bridge, sampling)

    def generate_next_message(
        self, message: ValidAgentInputMessage, state: LLMAgentState
    ) -> tuple[AssistantMessage, LLMAgentState]:
        _receive(state, message)
        reply = self._next(state, self.tools)
        state.messages.append(reply)
        return reply, state


class BackendSoloAgent(_BackendCalls, LLMSoloAgent):
    """tau2's solo agent (ticket in the prompt, user tools plus `done`) answering through our backend.

    A text reply is passed on as it is: the orchestrator ends a solo episode on it as `agent_error`
    (tau2's own `LLMSoloAgent` raises instead, which would abort the whole run).
    """

    def __init__(
        self,
        tools: list[Tool],
        domain_policy: str,
        task: Task,
        backend: ChatBackend,
        bridge: LoopThread,
        sampling: dict[str, Any] | None = None,
    ) -> None:
        LLMSoloAgent.__init__(
            self, tools=list(tools), domain_policy=domain_policy, task=task, llm=backend.name
        )
        self._setup(backend, bridge, sampling)

    def generate_next_message(
        self, message: ValidAgentInputMessage | None, state: LLMAgentState
    ) -> tuple[AssistantMessage, LLMAgentState]:
        if isinstance(message, UserMessage):
            raise AgentError("a solo agent got a user message")
        _receive(state, message)
        reply = self._next(state, self.tools)
        if reply.is_tool_call():
            reply = self._check_if_stop_toolcall(reply)  # a `done` call becomes tau2's stop message
        state.messages.append(reply)
        return reply, state


# --- gold replay -------------------------------------------------------------------------------------------


def closing_text(task: Task) -> str:
    """The gold agent's last words: the information the task says must be communicated, if any."""
    info = (task.evaluation_criteria.communicate_info if task.evaluation_criteria else None) or []
    return " ".join(["Done.", *info])


class _Replay:
    """Emit a fixed list of actions as tool calls, one per turn (`gold_<n>` ids), then a closing message."""

    actions: list[Action]

    def _emit(self, state: LLMAgentState, closing: str) -> AssistantMessage:
        done = sum(
            1
            for m in state.messages
            if isinstance(m, AssistantMessage) and any(c.id.startswith("gold_") for c in m.tool_calls or [])
        )
        if done < len(self.actions):
            action = self.actions[done]
            call = ToolCall(id=f"gold_{done + 1}", name=action.name, arguments=dict(action.arguments))
            return AssistantMessage(role="assistant", tool_calls=[call])
        return AssistantMessage(role="assistant", content=closing)

    def set_seed(self, seed: int) -> None:
        """Nothing to seed: the replay is deterministic."""


class GoldReplayAgent(_Replay, LocalAgent[LLMAgentState]):
    """Conversational gold replay: the agent's gold actions in order, then the communicate info as text.

    Only the actions the assistant requests are replayed; a user-requested gold action is the user's to do.
    """

    def __init__(self, tools: list[Tool], domain_policy: str, task: Task) -> None:
        super().__init__(tools=tools, domain_policy=domain_policy)
        self.task = task
        self.actions = [a for a in gold_actions(task) if a.requestor == "assistant"]

    def get_init_state(self, message_history: list[Message] | None = None) -> LLMAgentState:
        return LLMAgentState(system_messages=[], messages=list(message_history or []))

    def generate_next_message(
        self, message: ValidAgentInputMessage, state: LLMAgentState
    ) -> tuple[AssistantMessage, LLMAgentState]:
        _receive(state, message)
        reply = self._emit(state, closing_text(self.task))
        state.messages.append(reply)
        return reply, state


class GoldReplaySoloAgent(_Replay, LLMSoloAgent):
    """Solo gold replay: every gold action (the user's too: in solo mode the agent holds the user's tools),
    then tau2's stop message. With `actions=[]` it is the solo do-nothing floor: it stops at once."""

    def __init__(
        self, tools: list[Tool], domain_policy: str, task: Task, actions: list[Action] | None = None
    ):
        LLMSoloAgent.__init__(self, tools=list(tools), domain_policy=domain_policy, task=task, llm=GOLD_AGENT)
        self.actions = gold_actions(task) if actions is None else actions

    def generate_next_message(
        self, message: ValidAgentInputMessage | None, state: LLMAgentState
    ) -> tuple[AssistantMessage, LLMAgentState]:
        _receive(state, message)
        reply = self._emit(state, self.STOP_TOKEN)
        state.messages.append(reply)
        return reply, state


# --- users -----------------------------------------------------------------------------------------------


class BackendUser(UserSimulator):
    """tau2's user simulator (its guidelines, the task scenario, flipped roles, the user's own tools in
    telecom) speaking through one of our backends instead of litellm."""

    def __init__(
        self,
        tools: list[Tool] | None,
        instructions: str,
        backend: ChatBackend,
        bridge: LoopThread,
        sampling: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(tools=tools, instructions=instructions, llm=backend.name)
        self.backend, self.bridge, self.sampling = backend, bridge, dict(sampling or {})
        self._ids: set[str] = set()

    def set_seed(self, seed: int) -> None:
        """As for the agent: the trial seed travels as the OpenAI `seed` parameter."""
        self.sampling["seed"] = seed

    def _generate_next_message(
        self, message: ValidUserInputMessage, state: UserState
    ) -> tuple[UserMessage, UserState]:
        _receive(state, message)
        self._ids |= _taken_ids(state.messages)
        messages = to_openai_messages(state.system_messages + state.flip_roles())
        reply = self.bridge.run(self.backend.complete(messages, openai_tools(self.tools), **self.sampling))
        calls = _tool_calls(reply, "user", self._ids, UserError)
        user_message = UserMessage(
            role="user", content=reply.get("content") or None, tool_calls=calls or None
        )
        if not user_message.has_text_content() and not user_message.is_tool_call():
            raise UserError("the user simulator's reply is empty (no text, no tool calls)")
        state.messages.append(user_message)
        return user_message, state


class ScriptedUser(BaseUser):
    """A deterministic user for tests and gold replay only: says the task's instructions once, then stops
    (tau2's `###STOP###`) at the agent's next text message. Not a language model; never a benchmark user."""

    name = SCRIPTED_USER

    def __init__(self, instructions: str) -> None:
        super().__init__(instructions=instructions, llm=SCRIPTED_USER)

    def get_init_state(self, message_history: list[Message] | None = None) -> UserState:
        return UserState(system_messages=[], messages=list(message_history or []))

    @classmethod
    def is_stop(cls, message: UserMessage) -> bool:
        return UserSimulator.is_stop(message)

    def set_seed(self, seed: int) -> None:
        """Nothing to seed."""

    def generate_next_message(
        self, message: ValidUserInputMessage, state: UserState
    ) -> tuple[UserMessage, UserState]:
        _receive(state, message)
        spoke = any(isinstance(m, UserMessage) for m in state.messages)
        reply = UserMessage(role="user", content=STOP if spoke else str(self.instructions))
        state.messages.append(reply)
        return reply, state
