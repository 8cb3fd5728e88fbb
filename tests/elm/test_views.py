"""Augmented views (issue 11): every image in V independently augmented copies, view 0 exactly the single view,
the logit term on view 0, and the per-epoch anchor diagnostics on batches whose answer is known."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from elm.config import from_dict, set_keys
from elm.data.augment import sample_crop_flip
from elm.data.base import TensorSplit
from elm.data.loaders import derive_seed, iterate_batches, view_seed
from elm.losses.elm import ElmLoss, anchor_diagnostics
from elm.losses.functional import adjusted_cross_entropy, class_log_prior
from elm.train import fit
from elm.types import ModelOutput
from tests.conftest import tiny_raw

MEAN, STD = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)


def random_split(n: int = 20, side: int = 6) -> TensorSplit:
    g = torch.Generator().manual_seed(1)
    return TensorSplit(
        images=torch.randint(0, 256, (n, 3, side, side), generator=g, dtype=torch.uint8), labels=torch.arange(n) % 4
    )


def reference_view(image: torch.Tensor, pad: int, dy: int, dx: int, flip: bool) -> torch.Tensor:
    """One image, one view, written out: zero-pad, crop at (dy, dx), mirror."""
    c, h, w = image.shape
    padded = torch.zeros(c, h + 2 * pad, w + 2 * pad, dtype=image.dtype)
    padded[:, pad : pad + h, pad : pad + w] = image
    out = padded[:, dy : dy + h, dx : dx + w]
    return out.flip(-1) if flip else out


def test_each_view_is_an_independent_crop_and_flip_of_each_image_and_view_0_is_the_single_view() -> None:
    split, pad, b = random_split(), 2, 8
    kw = dict(batch_size=b, train=True, mean=MEAN, std=STD, image_size=6, seed=3, epoch=2, crop_pad=pad)
    single = list(iterate_batches(split, **kw))
    double = list(iterate_batches(split, views=2, **kw))
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(derive_seed(0, 3, 2)))
    augment_seed = derive_seed(1, 3, 2, 0)
    generators = [torch.Generator().manual_seed(view_seed(augment_seed, v)) for v in range(2)]
    for k, ((x1, _), (x2, y2)) in enumerate(zip(single, double)):
        idx = order[k * b : (k + 1) * b]
        n = len(idx)
        assert torch.equal(x2[:n], x1) and torch.equal(y2, split.labels[idx].repeat(2))  # view 0 unchanged
        for v in range(2):
            dy, dx, flip = sample_crop_flip(n, pad, generators[v])
            expected = (
                torch.stack(
                    [
                        reference_view(split.images[i], pad, int(dy[j]), int(dx[j]), bool(flip[j]))
                        for j, i in enumerate(idx.tolist())
                    ]
                ).float()
                / 255.0
            )
            torch.testing.assert_close(x2[v * n : (v + 1) * n], expected, rtol=0, atol=0)
    assert not torch.equal(double[0][0][:b], double[0][0][b:])  # the two views differ
    evals = list(iterate_batches(split, **{**kw, "train": False}, views=2))  # evaluation: one view
    assert evals[0][0].shape[0] == b


COUNTS = torch.tensor([200, 50, 5])  # many, medium, few


def test_anchor_statistics_on_a_known_batch() -> None:
    loss = ElmLoss(class_counts=COUNTS, margin=0.3)
    y = torch.tensor([0, 0, 1, 2, 0])  # one view: class 1 and class 2 have no partner
    stats = {k: float(v) for k, v in loss.anchor_statistics(y).items()}
    assert stats == {
        "margin_sum": 0.0,
        "anchors_many": 3.0,
        "with_positive_many": 3.0,
        "anchors_medium": 1.0,
        "with_positive_medium": 0.0,
        "anchors_few": 1.0,
        "with_positive_few": 0.0,
    }
    diag = anchor_diagnostics(stats)
    assert diag == {
        "emb_anchor_pos_frac_many": 1.0,
        "emb_anchor_share_many": 1.0,
        "emb_anchor_pos_frac_medium": 0.0,
        "emb_anchor_share_medium": 0.0,
        "emb_anchor_pos_frac_few": 0.0,
        "emb_anchor_share_few": 0.0,
        "emb_margin_applied_mean": 0.0,
    }
    two_views = {k: float(v) for k, v in loss.anchor_statistics(y.repeat(2)).items()}
    diag2 = anchor_diagnostics(two_views)
    assert [diag2[f"emb_anchor_pos_frac_{g}"] for g in ("many", "medium", "few")] == [1.0, 1.0, 1.0]
    margins = loss.margins  # log_prior schedule: 0 for the largest class, 0.3 for the rarest
    expected_mean = float((margins[y.repeat(2)]).mean())
    assert abs(diag2["emb_margin_applied_mean"] - expected_mean) < 1e-6 and margins[2] == 0.3


def test_the_logit_term_reads_view_0_only() -> None:
    loss = ElmLoss(class_counts=COUNTS, tau=1.0)
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0, 1, 2, 0]).repeat(2)
    out = ModelOutput(torch.randn(8, 3, generator=g), torch.randn(8, 5, generator=g), torch.randn(8, 4, generator=g))
    terms = loss.terms(out, y, views=2)
    expected = F.cross_entropy(out.logits[:4] + class_log_prior(COUNTS), y[:4])
    torch.testing.assert_close(terms["logit"], expected)
    torch.testing.assert_close(terms["logit"], adjusted_cross_entropy(out.logits[:4], y[:4], loss.log_prior, 1.0))


def test_fit_with_two_views_reports_every_anchor_with_a_positive(one_torch_thread: None) -> None:
    reports: list = []
    cfg = from_dict(set_keys(tiny_raw(), {"optim.epochs": 1}))  # ELM loss: views default to 2
    fit(cfg, reports.append)
    m = reports[0].metrics
    assert m["train/views"] == 2.0
    assert [m[f"train/emb_anchor_pos_frac_{g}"] for g in ("medium", "few") if f"train/emb_anchor_pos_frac_{g}" in m]
    for g in ("many", "medium", "few"):
        if f"train/emb_anchor_pos_frac_{g}" in m:
            assert m[f"train/emb_anchor_pos_frac_{g}"] == 1.0
    one = from_dict(set_keys(tiny_raw(), {"optim.epochs": 1, "train.views": 1}))
    reports.clear()
    fit(one, reports.append)
    assert reports[0].metrics["train/views"] == 1.0 and reports[0].metrics["train/emb_anchor_pos_frac_few"] < 1.0
