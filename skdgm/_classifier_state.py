"""The fitted state of a SemiSupervisedVAEClassifier as data, and back.

Two forms: JSON values and named tensors for :func:`skdgm.save` and :func:`skdgm.load`
(the estimator's ``_fitted_state`` and ``_restore_fitted_state`` hooks, see
:mod:`skdgm._persistence`), and a pickle whose networks are plain CPU tensors, so that
it loads on a machine without the device the model was fitted on. Both read what older
versions wrote: a pickle from before the two-stage model or the linear expert, a save
without a linear expert.
"""

from __future__ import annotations

import numpy as np

from ._preprocessing import ModelInputs

#: Attributes that scikit-learn's validate_data sets on the estimator while checking X.
SET_BY_VALIDATION = ("n_features_in_", "feature_names_in_")


# ------------------------------------------------------------- skdgm.save, skdgm.load
def fitted_state(estimator) -> tuple[dict, dict]:
    """The fitted state for :func:`skdgm.save`: (JSON-able values, named tensors)."""
    settings, arrays = estimator.inputs_.get_state()
    linear = estimator._linear
    values = {
        "classes_": estimator.classes_,
        "encoder_": estimator.encoder_,
        "decoder_": estimator.decoder_,
        "device_": estimator.device_,
        "history_": estimator.history_,
        "n_iter_": estimator.n_iter_,
        "best_epoch_": estimator.best_epoch_,
        "module_kwargs": estimator._module_kwargs,
        "inputs": settings,
        "linear": None
        if linear is None
        else {
            "weight": linear.weight,
            "n_dense": linear.n_dense,
            "n_pseudo_labels": estimator.n_pseudo_labels_,
        },
    }
    values.update({k: getattr(estimator, k) for k in SET_BY_VALIDATION if hasattr(estimator, k)})
    tensors = {f"module.{k}": v for k, v in estimator.module_.state_dict().items()}
    tensors.update({f"inputs.{k}": v for k, v in arrays.items()})
    # Labels may be strings: the transduction is stored as positions in classes_.
    tensors["transduction_"] = np.searchsorted(estimator.classes_, estimator.transduction_)
    if linear is not None:
        tensors["linear.coef"] = linear.coef
        tensors["linear.intercept"] = linear.intercept
    return values, tensors


def fitted_attributes(values: dict, tensors: dict, device) -> dict:
    """The fitted attributes that :func:`fitted_state`'s output describes (:func:`skdgm.load`).

    ``device`` is where the estimator runs (None: where it was fitted, if this machine
    has that device). Raises a ``ValueError`` (or ``KeyError``, ``TypeError``) when the
    values and tensors do not describe one fitted model.
    """
    from ._device import resolve_device
    from ._persistence import fitted_device, load_module_state
    from ._sdgm import build_module

    module = build_module(values["module_kwargs"])
    load_module_state(module, tensors, "module.")
    arrays = {
        k[len("inputs.") :]: v.numpy() for k, v in tensors.items() if k.startswith("inputs.")
    }
    inputs = ModelInputs.from_state(values["inputs"], arrays)
    classes = np.asarray(values["classes_"])
    transduction = tensors["transduction_"].numpy()
    if transduction.ndim != 1 or not np.isin(transduction, np.arange(len(classes))).all():
        raise ValueError("transduction_ holds positions outside classes_")
    attributes = {"device_": fitted_device(values["device_"], device)}
    attributes.update(
        encoder_=values["encoder_"],
        inputs_=inputs,
        _module_kwargs=values["module_kwargs"],
        module_=module.to(resolve_device(attributes["device_"])),
        classes_=classes,
        decoder_=values["decoder_"],
        history_=values["history_"],
        n_iter_=values["n_iter_"],
        best_epoch_=values["best_epoch_"],
        transduction_=classes[transduction],
    )
    linear = _restore_linear(values.get("linear"), tensors, len(classes), inputs)
    attributes.update(
        _linear=linear,
        linear_weight_=0.0 if linear is None else linear.weight,
        n_pseudo_labels_=int((values.get("linear") or {}).get("n_pseudo_labels", 0)),
    )
    attributes.update({key: values[key] for key in SET_BY_VALIDATION if key in values})
    return attributes


def _restore_linear(settings, tensors, n_classes: int, inputs: ModelInputs):
    """The linear expert saved by :func:`fitted_state` (None when the fit had none)."""
    if settings is None:  # off, or saved before the linear expert existed
        return None
    from ._sdgm._linear import LinearExpert

    for name in ("linear.coef", "linear.intercept"):
        if name not in tensors:
            raise ValueError(f"no tensor {name}")
    coef = tensors["linear.coef"].double().numpy()
    intercept = tensors["linear.intercept"].double().numpy()
    n_features, _ = inputs.widths_
    n_columns = (n_features if inputs.has_features else 0) + (
        len(inputs.vocabulary_) if inputs.has_counts else 0
    )
    if coef.shape != (n_classes, n_columns) or intercept.shape != (n_classes,):
        raise ValueError(
            f"linear.coef has shape {coef.shape} and linear.intercept {intercept.shape}, "
            f"expected ({n_classes}, {n_columns}) and ({n_classes},)"
        )
    weight = float(settings["weight"])
    if not 0.0 < weight <= 1.0:
        raise ValueError(f"the linear expert's weight is {weight}, expected 0 < w <= 1")
    n_dense = settings["n_dense"]
    return LinearExpert(coef, intercept, weight, None if n_dense is None else int(n_dense))


# ------------------------------------------------------------------------- pickle
def pickled_state(attributes: dict) -> dict:
    """A copy of the estimator's ``attributes`` to pickle: its networks as CPU tensors."""
    state = attributes.copy()
    if "module_" in state:
        # Plain CPU tensors: the pickle loads on machines without the training device.
        module = state["module_"]
        state["module_"] = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    return state


def unpickled_state(state: dict) -> dict:
    """The attributes of a pickled estimator: :func:`pickled_state`'s ``state``, its
    networks rebuilt (in place).

    Pickles from before the two-stage model (no ``z1_unit``) or the linear expert load
    as those versions predicted; ``device_`` becomes the CPU when it was a GPU that
    this machine lacks.
    """
    module_state = state.get("module_")
    if isinstance(module_state, dict):
        from ._sdgm import build_module

        module = build_module(state["_module_kwargs"])
        if "z1_unit" not in module_state and hasattr(module, "z1_unit"):
            # Pickled before the two-stage model existed: z1 in its own unit.
            module_state["z1_unit"] = module.z1_unit
        module.load_state_dict(module_state)
        state["module_"] = module
        # Pickled before the linear expert existed: q(y | x) alone.
        state.setdefault("_linear", None)
        state.setdefault("linear_weight_", 0.0)
        state.setdefault("n_pseudo_labels_", 0)
        if str(state.get("device_", "cpu")).startswith("cuda"):
            import torch

            if not torch.cuda.is_available():  # fitted on a GPU, loaded without one
                state["device_"] = "cpu"
    return state
