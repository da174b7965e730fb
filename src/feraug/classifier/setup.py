"""Building the pieces of a training run from its config: data, model, optimiser, schedule, loss."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from feraug.classifier import losses
from feraug.classifier.config import TrainConfig
from feraug.data import spec as data_spec
from feraug.data.dataset import FaceDataset
from feraug.data.spec import DataSpec
from feraug.errors import CheckpointError, ConfigError, DataError
from feraug.models import build_classifier
from feraug.models.checkpoint import read_checkpoint


def split_seed(config: TrainConfig | dict) -> int:
    """The seed that carved the run's validation split and folds: ``data_seed``, or the
    training seed when none was set (the behaviour before ``data_seed`` existed)."""
    return data_spec.split_seed(config if isinstance(config, dict) else config.model_dump())


def checkpoint_data_spec(meta: dict, data: str | Path) -> DataSpec | None:
    """The data set and split a classifier checkpoint was trained on (class map, folds, fold,
    split seed, size), when ``data`` is that data set; None for any other data set (e.g.
    scoring transfer to another set), which then starts from the defaults."""
    config = meta.get("config") or {}
    if config.get("data") is None:
        return None
    spec = DataSpec.from_stored(config, source="checkpoint config")
    return spec if spec.same_data(data) else None


def load_training_data(config: TrainConfig, dataset: FaceDataset | None) -> FaceDataset:
    """The real data set (loaded unless given) plus any synthetic folders, train split only."""
    ds = dataset if dataset is not None else config.data_spec().load()
    if config.synthetic_only and not config.synthetic:
        raise ConfigError("synthetic_only needs synthetic folders to train on")
    if config.synthetic:
        from feraug.data.synthetic import with_synthetic

        ds = with_synthetic(ds, config.synthetic)
    if config.extra_train:
        ds = with_extra_train(ds, config.extra_train, config.image_size)
    if config.synthetic_only:  # real training faces out; real validation and test stay
        ds = ds.select([i for i, (s, syn) in enumerate(zip(ds.split, ds.synthetic.tolist(),
                                                           strict=True))
                        if s != "train" or syn])
    for split in ("val", "test"):
        if bool(ds.synthetic[ds.indices(split)].any()):
            raise DataError(f"{ds.root}: synthetic images found in the {split} split")
    for split in ("train", "val"):
        if len(ds.indices(split)) == 0:
            raise DataError(f"{ds.root}: the {split} split is empty")
    counts = ds.class_counts("train")
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        raise DataError(f"{ds.root}: class(es) {', '.join(empty)} have no training images")
    return ds


def with_extra_train(ds: FaceDataset, paths: list[str], size: int) -> FaceDataset:
    """``ds`` plus the train split of each data set in ``paths``, labels mapped by emotion
    name onto ``ds``'s classes. Only their train faces are read into training, so ``ds``'s
    validation and test splits stay the only ones a model is chosen and scored on."""
    from feraug.data.dataset import concat

    parts = [ds]
    for path in paths:
        if ds.root and Path(ds.root).resolve() == Path(path).resolve():
            raise ConfigError(f"{path}: extra_train names the training data set itself (its "
                              "other splits would train on its test faces)")
        other = DataSpec(path=path, size=size).load().subset("train")
        unknown = sorted(set(other.classes) - set(ds.classes))
        if unknown:
            raise DataError(f"{path}: classes {', '.join(unknown)} are not among "
                            f"{ds.root}'s ({', '.join(ds.classes)})")
        index = torch.tensor([ds.classes.index(c) for c in other.classes], dtype=torch.long)
        other.labels = index[other.labels]
        other.classes = ds.classes
        other.source_ids = [f"{path}:{s}" for s in other.source_ids]
        if ds.subjects is not None and other.subjects is None:
            other.subjects = list(other.source_ids)
        parts.append(other)
    return concat(parts)


def last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    """Name and module of the final fully connected layer (the classifier head)."""
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ConfigError("model has no linear classifier layer")
    return found[-1]


def build_model(config: TrainConfig, num_classes: int) -> nn.Module:
    """The classifier, optionally initialised from a feraug checkpoint (fine-tuning)."""
    in_size = config.crop_size or config.image_size
    model = build_classifier(config.model, num_classes, in_size,
                             pretrained_weights=config.pretrained_weights)
    if config.init:
        state = read_checkpoint(config.init)
        if state["model_name"] != config.model:
            raise CheckpointError(f"{config.init}: holds a {state['model_name']} model, "
                                  f"not {config.model}")
        own = model.state_dict()
        weights = {k: v for k, v in state["model"].items()
                   if k in own and own[k].shape == v.shape}
        missing = set(own) - set(weights)
        head = last_linear(model)[0]
        if any(not k.startswith(head + ".") for k in missing):
            raise CheckpointError(f"{config.init}: incompatible weights for {config.model} "
                                  f"(missing {sorted(missing)[:3]})")
        model.load_state_dict(weights, strict=False)
    if config.freeze_backbone:
        head = last_linear(model)[0]
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith(head + ".")
    return model


def build_optimizer(config: TrainConfig, model: nn.Module,
                    fused: bool = False) -> torch.optim.Optimizer:
    """SGD (optionally Nesterov), Adam or AdamW over the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    kw = {"lr": config.lr, "weight_decay": config.weight_decay}
    if fused:
        kw["fused"] = True
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, momentum=config.momentum, nesterov=config.nesterov, **kw)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, **kw)
    return torch.optim.AdamW(params, **kw)


def build_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer):
    """Plateau on validation accuracy, cosine over epochs, or none (stepped once per epoch)."""
    if config.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=config.plateau_factor,
            patience=config.plateau_patience)
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return None


def build_loss(config: TrainConfig, train_labels: torch.Tensor, num_classes: int,
               device: torch.device) -> nn.Module:
    """The loss that ``config`` asks for (see :func:`feraug.classifier.losses.build_loss`)."""
    return losses.build_loss(train_labels, num_classes,
                             class_weighted=config.class_weighted_loss,
                             logit_adjust_tau=config.logit_adjust_tau,
                             label_smoothing=config.label_smoothing).to(device)
