"""The plumbing every optimizer here shares, so each paper's file holds only its maths and state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from common.kernels.dispatch import check_impl, default_impl
from common.optim.precision import state_dtype
from common.optim.validation import check_dense_grad


class CheckedOptimizer(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` that validates every param group (defaults and later groups alike, so a
    bad ``lr`` in a group fails as early as a bad default), evaluates closures with gradients enabled, hands
    ``step`` only parameters with a dense, real gradient (one clear error otherwise), and loads state dicts
    so that the state keeps the optimizer's own dtypes and types (torch casts every floating state tensor to
    the param dtype, so bf16 params would lose their fp32 moments).

    Subclasses set ``_validate_group`` and ``_restore_state``; ``_foreign_group_keys`` names group keys that
    an official checkpoint carries and we do not (dropped on load).
    """

    _foreign_group_keys: tuple[str, ...] = ()

    @staticmethod
    def _check_impl(impl: str | None) -> str:
        """The ``impl=`` argument of the elementwise optimizers, validated; None means :func:`default_impl`. It is an
        attribute, not a group key: it changes how the update runs, not what it computes, so a checkpoint written
        with one implementation resumes with another."""
        return check_impl(default_impl() if impl is None else impl)

    @staticmethod
    def _validate_group(group: dict[str, Any]) -> dict[str, Any]:
        """Return the group with its hyperparameters checked; subclasses bind their validator here."""
        return group

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(self._validate_group(param_group) if isinstance(param_group, dict) else param_group)

    @staticmethod
    def _evaluate(closure: Callable[[], float] | None) -> float | None:
        """The loss from ``closure`` (re-evaluating the model under enable_grad), or None without one."""
        if closure is None:
            return None
        with torch.enable_grad():
            return closure()

    def _params_with_grad(self, group: dict[str, Any]) -> Iterator[torch.Tensor]:
        """The group's parameters that have a gradient; sparse gradients and complex params raise."""
        name = type(self).__name__
        for p in group["params"]:
            if p.grad is None:
                continue
            check_dense_grad(p.grad, name)
            if p.is_complex():
                raise RuntimeError(f"{name} does not support complex parameters; use torch.view_as_real")
            yield p

    def _gather_moments(self, group: dict[str, Any], *buffers: str
                        ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[list[torch.Tensor]], list[int]]:
        """The group's params with a gradient, their grads, the state ``buffers`` and their step counts after this
        step's increment: the lists a kernel takes. A buffer missing from the state is created as zeros in the state
        dtype: on first use, or for an optional buffer switched on mid-run (amsgrad's max then starts here)."""
        params, grads, steps = [], [], []
        columns: list[list[torch.Tensor]] = [[] for _ in buffers]
        for p in self._params_with_grad(group):
            state = self.state[p]
            if "step" not in state:
                state["step"] = 0
            for name in buffers:
                if name not in state:
                    state[name] = torch.zeros_like(p, dtype=state_dtype(p.dtype), memory_format=torch.preserve_format)
            state["step"] += 1
            params.append(p)
            grads.append(p.grad)
            for column, name in zip(columns, buffers, strict=True):
                column.append(state[name])
            steps.append(state["step"])
        return params, grads, columns, steps

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load as torch does; then drop foreign group keys, take keys a checkpoint lacks (an official one) from
        the current groups, validate, and let the subclass restore each parameter's state."""
        saved_ids = [pid for g in state_dict["param_groups"] for pid in g["params"]]
        params = [p for g in self.param_groups for p in g["params"]]
        current = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
        super().load_state_dict(state_dict)  # validates group and parameter counts
        for group, mine in zip(self.param_groups, current, strict=True):
            for key in self._foreign_group_keys:
                group.pop(key, None)
            for key, value in mine.items():
                group.setdefault(key, value)
            group.update(self._validate_group({k: v for k, v in group.items() if k != "params"}))
        for pid, p in zip(saved_ids, params, strict=True):
            saved = state_dict["state"].get(pid)
            if saved:
                self._restore_state(p, saved, self.state[p])

    def _restore_state(self, p: torch.Tensor, saved: dict[str, Any], state: dict[str, Any]) -> None:
        """Fix one parameter's state after torch's load (dtypes, int counters); ``saved`` is the checkpoint's."""
