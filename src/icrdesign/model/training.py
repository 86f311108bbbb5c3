"""Training loop: seeded, resumable from an atomic per-epoch checkpoint, early stopping and
ReduceLROnPlateau on the validation loss.

Works on plain arrays (scaled representation + normalised properties), so it needs no pymatgen.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import pickle
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from icrdesign.artefacts.model import CHECKPOINT_FILE, set_aside
from icrdesign.errors import InputError
from icrdesign.io import atomic_path
from icrdesign.model.network import Architecture, LossTerms, PropertyVAE, vae_loss

log = logging.getLogger(__name__)

# Settings that may change between a killed run and its restart without invalidating the checkpoint.
RESUMABLE_KEYS = ("max_epochs", "early_stopping_patience", "device", "num_threads", "mixed_precision")
LOSS_TERMS = ("loss", "reconstruction", "kl", "property")


@dataclass
class TrainingData:
    """Scaled arrays (N x rows x channels), normalised targets (N x properties), split labels and the
    reconstruction-loss weight of every row (None: all 1)."""

    arrays: np.ndarray
    targets: np.ndarray
    split: np.ndarray
    row_weights: np.ndarray | None = None

    def part(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.split == name
        return torch.from_numpy(self.arrays[rows]).float(), torch.from_numpy(self.targets[rows]).float()

    def digest(self) -> str:
        hasher = hashlib.sha256()
        weights = self.row_weights if self.row_weights is not None else np.ones(0)
        for array in (self.arrays, self.targets, self.split.astype(str), weights):
            hasher.update(np.ascontiguousarray(array).tobytes())
        return hasher.hexdigest()[:16]


@dataclass
class FitResult:
    vae: PropertyVAE
    checkpoint: dict[str, Any]
    history: list[dict[str, float]]
    device: torch.device
    epochs: int
    train_seconds: float
    resumed_from: int


def resolve_device(setting: str) -> torch.device:
    """'auto' takes CUDA when present; asking for 'cuda' without one is a configuration error."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config key 'model.device' is 'cuda' but no CUDA device is available (allowed: auto, cpu)")
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def _fingerprint(model_section: dict[str, Any], seed: int, arch: Architecture, data_digest: str) -> str:
    settings = {k: v for k, v in model_section.items() if k not in RESUMABLE_KEYS}
    payload = json.dumps([settings, seed, arch.to_dict(), data_digest], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def kl_weight(model_section: dict[str, Any], epoch: int) -> float:
    """beta, ramped linearly over the first ``kl_warmup_epochs`` epochs (1-based) when that is > 0."""
    warmup = model_section["kl_warmup_epochs"]
    return model_section["beta"] * (min(1.0, epoch / warmup) if warmup > 0 else 1.0)


def _optimizer(vae: PropertyVAE, model_section: dict[str, Any]) -> torch.optim.Optimizer:
    lr = model_section["learning_rate"]
    # Weight decay only on the property head, whose small data set it overfits; the VAE has none.
    head = list(vae.property_head.parameters())
    head_ids = {id(p) for p in head}
    groups = [
        {"params": [p for p in vae.parameters() if id(p) not in head_ids], "weight_decay": 0.0},
        {"params": head, "weight_decay": model_section["property_weight_decay"]},
    ]
    if model_section["optimizer"] == "rmsprop":
        # Keras' RMSprop constants (rho 0.9, eps 1e-7), as in the paper's implementation; torch's
        # alpha 0.99 takes ~10x-lr first steps that blow up the log-variance head.
        return torch.optim.RMSprop(groups, lr=lr, alpha=0.9, eps=1e-7)
    # The fused kernel (CPU and CUDA) updates all parameters in one pass: the optimiser step was a quarter
    # of a CPU training step with the per-parameter loop.
    return torch.optim.AdamW(groups, lr=lr, fused=True)


def warmup_factor(model_section: dict[str, Any], epoch: int) -> float:
    """Learning-rate multiplier, ramped linearly over the first ``lr_warmup_epochs`` epochs (1-based)."""
    warmup = model_section["lr_warmup_epochs"]
    return min(1.0, epoch / warmup) if warmup > 0 else 1.0


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    yield from order.split(batch_size)


def _run_epoch(
    vae: PropertyVAE,
    x: torch.Tensor,
    y: torch.Tensor,
    model_section: dict[str, Any],
    beta: float,
    device: torch.device,
    optimizer: torch.optim.Optimizer | None,
    generator: torch.Generator | None,
    row_weights: torch.Tensor | None,
) -> dict[str, float]:
    """One pass; trains when an optimizer is given, else evaluates. Returns per-crystal mean losses."""
    training = optimizer is not None
    vae.train(training)
    sums = dict.fromkeys(LOSS_TERMS, 0.0)
    amp = model_section["mixed_precision"]
    clip = model_section["gradient_clip_norm"]
    with torch.set_grad_enabled(training):
        for index in _batches(len(x), model_section["batch_size"], generator):
            xb, yb = x[index].to(device, non_blocking=True), y[index].to(device, non_blocking=True)
            with _autocast(device, amp):
                recon, mean, logvar, predicted = vae(xb)
            terms: LossTerms = vae_loss(
                xb, recon, mean, logvar, predicted, yb, beta, model_section["property_weight"], row_weights
            )
            if training:
                optimizer.zero_grad(set_to_none=True)
                terms.total.backward()
                if clip:
                    torch.nn.utils.clip_grad_norm_(vae.parameters(), clip)
                optimizer.step()
            for key, value in zip(LOSS_TERMS, (terms.total, terms.reconstruction, terms.kl, terms.property)):
                sums[key] += float(value.detach()) * len(index)
    return {key: value / max(len(x), 1) for key, value in sums.items()}


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, device: str | torch.device = "cpu",
                    remedy: str = "re-run the train stage") -> dict[str, Any]:
    """Load a checkpoint written by :func:`fit` (plain tensors and JSON-able values only).

    A file that is empty, truncated or not such a checkpoint raises InputError naming it and
    ``remedy``, what to do about it.
    """
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (OSError, EOFError, RuntimeError, KeyError, pickle.UnpicklingError) as error:  # how torch.load fails
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        raise InputError(f"{path}: unreadable ({type(error).__name__}{': ' if first_line else ''}{first_line}); "
                         f"{remedy}") from None


def _resumable_state(path: Path, fingerprint: str, device: torch.device) -> dict[str, Any] | None:
    """The checkpoint at ``path`` when it was written for these settings and data, else None."""
    if not path.exists():
        return None
    previous = load_checkpoint(path, device, remedy="delete it to train from scratch")
    return previous if previous.get("fingerprint") == fingerprint else None


def fit(
    data: TrainingData,
    model_section: dict[str, Any],
    seed: int,
    out_dir: Path,
    metadata: dict[str, Any],
    show_progress: bool = True,
) -> FitResult:
    """Train (or resume training of) a PropertyVAE; ``out_dir``'s checkpoint is rewritten every epoch.

    ``metadata`` (JSON-able: representation, scalers, config) is stored in every checkpoint.
    A checkpoint of the same settings and data is resumed. Otherwise a model already in ``out_dir``
    (its checkpoint of other settings or data, or its model file) is moved to a dated folder beside
    it (:func:`icrdesign.artefacts.model.set_aside`) before training starts afresh. An unreadable
    checkpoint raises InputError naming it.
    """
    device = resolve_device(model_section["device"])
    if model_section["num_threads"]:
        torch.set_num_threads(model_section["num_threads"])
    # The CPU kernels this network uses are deterministic for a fixed thread count (the resume test
    # checks bit-identical runs), so torch.use_deterministic_algorithms, whose first call imports
    # torch's compiler stack (~10 s), is not needed; on GPU the fastest kernels win.
    torch.backends.cudnn.benchmark = device.type == "cuda"
    _, n_rows, n_channels = data.arrays.shape
    arch = Architecture.from_settings(model_section, n_rows, n_channels)
    fingerprint = _fingerprint(model_section, seed, arch, data.digest())
    # Plain JSON types only, so torch.load(weights_only=True) accepts the checkpoint.
    metadata = json.loads(json.dumps(metadata))

    torch.manual_seed(seed)
    vae = PropertyVAE(arch).to(device)
    optimizer = _optimizer(vae, model_section)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=model_section["lr_factor"], patience=model_section["lr_patience"]
    )
    state: dict[str, Any] = {
        "format": 1,
        "fingerprint": fingerprint,
        "architecture": arch.to_dict(),
        "metadata": metadata,
        "epoch": 0,
        "best_epoch": 0,
        "best_val_loss": float("inf"),
        "epochs_since_best": 0,
        "stopped_early": False,
        "train_seconds": 0.0,
        "history": [],
        "best_model": copy.deepcopy(vae.state_dict()),
    }
    ckpt_path = out_dir / CHECKPOINT_FILE
    previous = _resumable_state(ckpt_path, fingerprint, device)
    if previous is not None:
        vae.load_state_dict(previous["model"])
        optimizer.load_state_dict(previous["optimizer"])
        scheduler.load_state_dict(previous["scheduler"])
        state.update({k: v for k, v in previous.items() if k not in ("model", "optimizer", "scheduler")})
        state["metadata"] = metadata
        log.info("resuming from %s after epoch %d", ckpt_path, state["epoch"])
    elif (backup := set_aside(out_dir)) is not None:
        # A model of other settings or data (or one without its checkpoint) is kept, not overwritten.
        log.warning("%s holds a model this run cannot resume (other settings or data, or no checkpoint); "
                    "moved it to %s and training from scratch", out_dir, backup)
    resumed_from = state["epoch"]

    x_train, y_train = data.part("train")
    x_val, y_val = data.part("val")
    if len(x_train) == 0 or len(x_val) == 0:
        raise ValueError(f"need train and val crystals, got {len(x_train)} train and {len(x_val)} val")
    if device.type == "cuda":
        x_train, y_train, x_val, y_val = (t.to(device) for t in (x_train, y_train, x_val, y_val))
    row_weights = torch.from_numpy(data.row_weights).float().to(device) if data.row_weights is not None else None

    max_epochs = model_section["max_epochs"]
    epochs = range(state["epoch"] + 1, max_epochs + 1)
    progress = tqdm(epochs, desc="train", unit="epoch", disable=not show_progress, initial=state["epoch"],
                    total=max_epochs)
    for epoch in progress:
        if state["stopped_early"]:
            break
        started = time.perf_counter()
        # Seeds derived from the epoch make a resumed run draw the same shuffles and noise.
        torch.manual_seed(seed * 1000 + epoch)
        generator = torch.Generator().manual_seed(seed * 1000 + epoch)
        beta = kl_weight(model_section, epoch)
        warming_up = epoch <= model_section["lr_warmup_epochs"]
        if warming_up:
            for group in optimizer.param_groups:
                group["lr"] = model_section["learning_rate"] * warmup_factor(model_section, epoch)
        train_terms = _run_epoch(vae, x_train, y_train, model_section, beta, device, optimizer, generator, row_weights)
        val_terms = _run_epoch(
            vae, x_val, y_val, model_section, model_section["beta"], device, None, None, row_weights
        )
        if not np.isfinite(train_terms["loss"]):
            raise FloatingPointError(
                f"training diverged at epoch {epoch} (loss {train_terms['loss']}); "
                f"lower 'model.learning_rate' (now {model_section['learning_rate']})"
            )
        # The plateau schedule takes over once the warm-up has reached the full learning rate.
        if not warming_up:
            scheduler.step(val_terms["loss"])
        seconds = time.perf_counter() - started
        row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "beta": beta, "seconds": seconds}
        row |= {f"train_{k}": v for k, v in train_terms.items()} | {f"val_{k}": v for k, v in val_terms.items()}
        state["history"].append(row)
        state["train_seconds"] += seconds
        state["epoch"] = epoch
        if val_terms["loss"] < state["best_val_loss"]:
            state.update(best_val_loss=val_terms["loss"], best_epoch=epoch, epochs_since_best=0)
            state["best_model"] = copy.deepcopy(vae.state_dict())
        else:
            state["epochs_since_best"] += 1
        state["stopped_early"] = state["epochs_since_best"] >= model_section["early_stopping_patience"]
        state.update(model=vae.state_dict(), optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict())
        _save_checkpoint(ckpt_path, state)
        log.info(
            "epoch %d/%d  train loss %.3f (recon %.3f, kl %.3f, property %.5f)  "
            "val loss %.3f (recon %.3f, kl %.3f, property %.5f)  lr %.2g  beta %.2f  %.1fs",
            epoch, max_epochs, *(train_terms[k] for k in LOSS_TERMS), *(val_terms[k] for k in LOSS_TERMS),
            row["lr"], beta, seconds,
        )
        progress.set_postfix(train=f"{train_terms['loss']:.2f}", val=f"{val_terms['loss']:.2f}")
        if state["stopped_early"]:
            log.info("early stopping: no validation improvement for %d epochs", state["epochs_since_best"])
    progress.close()

    vae.load_state_dict(state["best_model"])
    vae.eval()
    return FitResult(
        vae=vae,
        checkpoint=state,
        history=state["history"],
        device=device,
        epochs=state["epoch"],
        train_seconds=state["train_seconds"],
        resumed_from=resumed_from,
    )


def save_model(path: Path, result: FitResult) -> None:
    """Write the final checkpoint: the best weights as ``model``, with optimiser, scheduler and metadata."""
    state = {k: v for k, v in result.checkpoint.items() if k != "best_model"}
    state["model"] = result.vae.state_dict()
    _save_checkpoint(path, state)
