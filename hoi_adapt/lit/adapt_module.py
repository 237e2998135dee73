"""The method itself: estimator E, generator G and discriminator D trained alternately (manual optimisation).

Streams of each training batch (any may be absent, e.g. real-data setups without synthetic pairs):

* ``hand_only``: labelled hand-only images — D's real samples and E's "do not forget" batch;
* ``pairs``: labelled hand-object images with their hand-only twin (synthetic pairs, ObMan);
* ``hoi``: hand-object images without pose, with a visible-hand mask (target domain, HO-3D ``segr``).

Phases (:mod:`hoi_adapt.lit.schedule`): stage 0 trains E on ``hand_only``; each round then updates G and D
with E frozen (E renders its first mesh as G's guidance), then E on G's translations with G frozen, mixed
with ``hand_only`` batches. Frozen networks run in eval mode under ``no_grad`` so neither their weights nor
their normalisation statistics move (tested).

Losses (method.md): G on pairs — L1 to the twin + adversarial; G on ``hoi`` — visible hand preserved,
outside the hand region (visible mask ∪ rendered silhouette) -> hand-only background, occluded-but-rendered
pixels -> the colour-matched rendering (mesh-guided filling) + adversarial. E on translations — supervised
where labels exist (pairs: the amodal hand mask is the target of the de-occluded image), and on ``hoi``:
silhouette and 2D-mask evidence against the visible mask widened by the first mesh's silhouette. E's first
pass on the raw hand-object images (which renders G's guidance) is trained in the same step: supervised on
pairs, mask evidence on ``hoi`` (object pixels ignored), and two-pass consistency that pulls it towards the
final pass on the translation (a detached teacher) — ``first_pass_weight: 0`` keeps it out of training.
"""
from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import OptimizerCallable
from torch import nn

from hoi_adapt.checkpoints import format as ckpt_format
from hoi_adapt.lit import hparams
from hoi_adapt.lit.batching import concat_batches, stream_batches
from hoi_adapt.lit.guards import NonFiniteGuard, norm_statistics, restore_norm_statistics
from hoi_adapt.lit.joint_metrics import JointAccumulator
from hoi_adapt.lit.schedule import DONE, EST, GD, STAGE0, AdaptSchedule, Phase
from hoi_adapt.lit.supervised import init_estimator_on_fresh_start, make_estimator_loss, supervised_step
from hoi_adapt.losses.estimator import EstimatorLossWeights, consistency_loss
from hoi_adapt.losses.gan import GANLoss, ImagePool
from hoi_adapt.losses.image_quality import l1, psnr, ssim
from hoi_adapt.losses.translation import TranslationLoss, hand_region_mask
from hoi_adapt.models.estimator import MeshEstimator
from hoi_adapt.models.pipeline import AdaptPipeline, MeshGuidance
from hoi_adapt.utils.errors import ConfigError
from hoi_adapt.viz.drawing import adapt_panels

SCHEDULE_KEY = "hoi_adapt_schedule"


def default_opt_est(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-4)


def default_opt_gan(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))


class AdaptModule(pl.LightningModule):
    """The alternating adaptation schedule (manual optimisation of E, G and D).

    Args:
        estimator: mesh estimator E.
        generator: G; its input channels must be 3 (+5 with mesh guidance).
        discriminator: D (PatchGAN); not trained when the adversarial weight is 0.
        guidance: mesh-guidance renderer; None trains "G without mesh guidance".
        schedule: phase lengths.
        estimator_ckpt: stage-0 checkpoint whose estimator weights initialise E. Read when the run starts (a
            resumed run continues its own E) and refused if made for another hand model, joint order,
            fingertip preset or input size.
        translation_loss: G's loss terms and weights (weight 0 disables a term; adversarial 0 = no GAN).
        estimator_loss_weights: weights of E's losses.
        consistency_weight: two-pass consistency on unlabelled hand-object images (first pass -> final pass).
        first_pass_weight: weight of E's losses on the raw hand-object images in the E phase (the first pass
            renders G's guidance); 0 keeps the first pass out of training.
        pool_size: history of fakes shown to D.
        hand_only_background: RGB of the plain hand-only background G must produce.
        silhouette_size: render size of the silhouette loss.
        grad_clip: gradient-norm clip for every optimiser (0 disables).
        max_nonfinite: consecutive non-finite losses tolerated before stopping.
        opt_est, opt_g, opt_d: optimiser factories.
        val_protocol: protocol for validation metrics.
    """

    def __init__(
        self,
        estimator: MeshEstimator,
        generator: nn.Module,
        discriminator: nn.Module,
        guidance: MeshGuidance | None = None,
        schedule: AdaptSchedule | None = None,
        estimator_ckpt: str | None = None,
        translation_loss: TranslationLoss | None = None,
        estimator_loss_weights: EstimatorLossWeights | None = None,
        consistency_weight: float = 20.0,
        first_pass_weight: float = 1.0,
        pool_size: int = 50,
        hand_only_background: tuple[float, float, float] = (0.5, 0.5, 0.5),
        silhouette_size: int = 32,
        grad_clip: float = 10.0,
        max_nonfinite: int = 5,
        opt_est: OptimizerCallable = default_opt_est,
        opt_g: OptimizerCallable = default_opt_gan,
        opt_d: OptimizerCallable = default_opt_gan,
        val_protocol: str = "synthetic",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["estimator", "generator", "discriminator", "guidance", "translation_loss",
                                          "opt_est", "opt_g", "opt_d", "schedule", "estimator_loss_weights"])
        self.automatic_optimization = False
        self.estimator = estimator
        self.generator = generator
        self.discriminator = discriminator
        self.guidance = guidance
        self.schedule = schedule or AdaptSchedule()
        hparams.record_dataclass_hparams(self, schedule=self.schedule, estimator_loss_weights=estimator_loss_weights)
        self.translation_loss = translation_loss or TranslationLoss()
        self.gan_loss: GANLoss = self.translation_loss.gan  # D must use G's objective
        self.estimator_loss = make_estimator_loss(estimator_loss_weights, silhouette_size)
        self.consistency_weight = consistency_weight
        self.first_pass_weight = first_pass_weight
        self.pool = ImagePool(pool_size)
        self.register_buffer("background", torch.tensor(hand_only_background, dtype=torch.float32), persistent=False)
        self.grad_clip = grad_clip
        self.guard = NonFiniteGuard(max_nonfinite)
        self.factories = {"est": opt_est, "g": opt_g, "d": opt_d}
        self.val_protocol = val_protocol
        self.schedule_step = 0
        self.last_boundary: Phase | None = None
        self._val: dict[str, Any] = {}
        expected = 3 + (5 if guidance is not None else 0)
        first_conv = next((m for m in generator.modules() if isinstance(m, nn.Conv2d)), None)
        if first_conv is not None and first_conv.in_channels != expected:
            raise ConfigError(f"generator takes {first_conv.in_channels} input channels but the configuration gives it "
                              f"{expected} (image{' + 5 mesh-guidance channels' if guidance is not None else ' only'})")
        self.estimator_ckpt = estimator_ckpt

    # ------------------------------------------------------------------ setup
    def on_fit_start(self) -> None:
        init_estimator_on_fresh_start(self, self.estimator_ckpt)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.factories["est"](self.estimator.parameters()), self.factories["g"](self.generator.parameters()),
                self.factories["d"](self.discriminator.parameters())]

    @property
    def pipeline(self) -> AdaptPipeline:
        """The inference path over the same networks (not a registered submodule: no duplicate weights)."""
        return AdaptPipeline(self.estimator, self.generator, self.guidance)

    @property
    def adversarial(self) -> bool:
        return self.translation_loss.is_active("adv")

    def phase(self) -> Phase:
        return self.schedule.phase_at(self.schedule_step)

    def _set_modes(self, phase: str) -> None:
        self.estimator.train(phase in (STAGE0, EST))
        self.generator.train(phase == GD)
        self.discriminator.train(phase == GD)

    # ------------------------------------------------------------------ optimisation helpers
    def _step(self, optimizer: Any, loss: torch.Tensor, where: str, terms: dict[str, torch.Tensor]) -> bool:
        """Backward + step unless the loss is non-finite (call inside ``toggled_optimizer``)."""
        optimizer.zero_grad(set_to_none=True)
        key = str(next(i for i, o in enumerate(self.optimizers()) if o is optimizer))  # streaks per optimiser
        ok = self.guard.check(loss, where, terms, key=key)
        if ok:
            self.manual_backward(loss)
            if self.grad_clip > 0:
                self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")
            optimizer.step()
        else:
            restore_norm_statistics(self, self._norm_stats)  # as before this training step (NaN inputs)
            self.log("train/nonfinite_skipped", float(self.guard.total_skipped))
        return ok

    def _log_terms(self, prefix: str, terms: dict[str, torch.Tensor], batch_size: int) -> None:
        self.log_dict({f"train/{prefix}{k}": v.detach() for k, v in terms.items()}, batch_size=batch_size)

    # ------------------------------------------------------------------ phases
    def _stage0_step(self, streams: dict[str, dict[str, Any]]) -> None:
        """Stage 0 as in EstimatorModule (the same supervised step), on the labelled hand-only stream only.

        An adaptation's data module also yields hand-object and unlabelled target streams, which a stage-0
        run never sees; without a ``hand_only`` stream every stream is used.
        """
        opt_est = self.optimizers()[0]
        labelled = {k: v for k, v in streams.items() if k == "hand_only"} or streams
        with self.toggled_optimizer(opt_est):
            loss, terms, batch_size = supervised_step(self.estimator, self.estimator_loss, labelled)
            self._step(opt_est, loss, "stage 0", terms)
        self._log_terms("e_", {**terms, "total": loss}, batch_size)

    def _first_pass(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None, Any]:
        """E's first mesh (frozen, eval mode) and G's translation inputs for a hand-object batch."""
        was_training = self.estimator.training
        self.estimator.eval()
        with torch.no_grad():
            first = self.estimator(batch["image"], batch["K"])
        self.estimator.train(was_training)
        return first

    def _generator_terms(self, stream: str, fake: torch.Tensor, part: dict[str, torch.Tensor],
                         guidance: dict[str, torch.Tensor] | None, logits: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """G's losses for one stream's slice of the batch (pairs: supervised; hoi: weakly supervised)."""
        if stream == "pairs":
            pair_mask = part["has_pair"].view(-1, 1, 1, 1).expand(-1, 1, *fake.shape[-2:])
            return self.translation_loss(fake, target=part["image_hand_only"], pair_mask=pair_mask, fake_logits=logits)
        visible = part["hand_mask"] * part["has_mask"].view(-1, 1, 1)
        sil = guidance["silhouette"] if guidance is not None else None
        return self.translation_loss(
            fake, hoi_image=part["image"], visible_hand_mask=visible, background=self.background,
            hand_region=hand_region_mask(visible, sil), rendered_hand=guidance["shaded"] if guidance is not None else None,
            rendered_silhouette=sil, fake_logits=logits,
        )

    def _gd_step(self, streams: dict[str, dict[str, Any]]) -> None:
        _, opt_g, opt_d = self.optimizers()
        names = [k for k in ("pairs", "hoi") if k in streams]
        if not names:
            raise ValueError("the G/D phase needs a 'pairs' or 'hoi' stream of hand-object images")
        batch = concat_batches([streams[k] for k in names])
        first = self._first_pass(batch)
        g_terms: dict[str, torch.Tensor] = {}
        with self.toggled_optimizer(opt_g):
            translated, guidance, _ = self.pipeline.translate(batch["image"], batch["K"], first)
            fake_logits = self.discriminator(translated) if self.adversarial else None
            total = translated.new_zeros(())
            offset = 0
            for name in names:
                sl = slice(offset, offset + streams[name]["image"].shape[0])
                offset = sl.stop
                part = {k: v[sl] for k, v in batch.items() if isinstance(v, torch.Tensor)}
                part_guidance = {k: v[sl] for k, v in guidance.items()} if guidance is not None else None
                terms = self._generator_terms(name, translated[sl], part, part_guidance,
                                              fake_logits[sl] if fake_logits is not None else None)
                total = total + terms.pop("total")
                g_terms.update({f"{name}_{k}": v for k, v in terms.items()})
            self._step(opt_g, total, f"round {self.phase().round} G step", g_terms)
        self._log_terms("g_", {**g_terms, "total": total}, batch["image"].shape[0])

        if self.adversarial:
            real = streams["hand_only"]["image"] if "hand_only" in streams else batch["image_hand_only"]
            fake = self.pool.query(translated.detach())
            with self.toggled_optimizer(opt_d):
                d = self.gan_loss.discriminator_loss(self.discriminator(real), self.discriminator(fake))
                self._step(opt_d, d["total"], f"round {self.phase().round} D step", d)
            self._log_terms("d_", d, batch["image"].shape[0])

    @staticmethod
    def _translated_batch(name: str, batch: dict[str, Any], translated: torch.Tensor,
                          guidance: dict[str, torch.Tensor] | None) -> dict[str, Any]:
        """``batch`` with its image replaced by G's translation and targets adjusted to a de-occluded image."""
        batch = dict(batch)
        batch["image"] = translated
        if name == "pairs":  # the translation shows the whole hand: its mask is the amodal one
            full = batch["has_mask_full"].view(-1, 1, 1) > 0
            batch["hand_mask"] = torch.where(full, batch["hand_mask_full"], batch["hand_mask"])
        else:  # unlabelled: the visible hand widened by the first mesh's silhouette
            if guidance is not None:
                batch["hand_mask"] = torch.maximum(batch["hand_mask"], (guidance["silhouette"][:, 0] > 0.5).to(translated.dtype))
            batch["has_mask_full"] = torch.zeros_like(batch["has_mask_full"])
        batch["object_mask"] = torch.zeros_like(batch["object_mask"])  # there is no object in a translation
        return batch

    def _est_step(self, streams: dict[str, dict[str, Any]]) -> None:
        """E on G's translations (final pass) and on the raw hand-object images (first pass), G frozen.

        The first pass renders G's guidance, so it must improve too: it is supervised where labels exist
        (synthetic pairs), gets mask/silhouette evidence from the visible-hand mask (object pixels ignored)
        and is pulled towards the final pass's skeleton (a detached teacher: the translation is the easier
        image) by the two-pass consistency term.
        """
        opt_est = self.optimizers()[0]
        names = [k for k in ("pairs", "hoi") if k in streams]
        hm = self.estimator.hand_model
        with self.toggled_optimizer(opt_est):
            loss = torch.zeros((), device=self.device)
            terms: dict[str, torch.Tensor] = {}
            parts: list[dict[str, Any]] = []
            hoi_slice, first = None, None
            if names:
                raw = concat_batches([streams[k] for k in names])
                if self.first_pass_weight > 0:
                    first = self.estimator(raw["image"], raw["K"])
                    loss1, terms1 = self.estimator_loss(first, raw, hm.faces, hm.hands_mean)
                    loss = loss + self.first_pass_weight * loss1
                    terms.update({f"first_{k}": v for k, v in terms1.items()})
                    guide_from = first
                else:
                    guide_from = self._first_pass(raw)
                with torch.no_grad():
                    translated, guidance, _ = self.pipeline.translate(raw["image"], raw["K"], guide_from.detach())
                offset = 0
                for name in names:
                    sl = slice(offset, offset + streams[name]["image"].shape[0])
                    offset = sl.stop
                    part_guidance = {k: v[sl] for k, v in guidance.items()} if guidance is not None else None
                    parts.append(self._translated_batch(name, streams[name], translated[sl], part_guidance))
                    if name == "hoi":
                        hoi_slice = sl
            if "hand_only" in streams:
                parts.append(streams["hand_only"])
            merged = concat_batches(parts)
            out = self.estimator(merged["image"], merged["K"])
            loss2, terms2 = self.estimator_loss(out, merged, hm.faces, hm.hands_mean)
            loss = loss + loss2
            terms.update(terms2)
            if hoi_slice is not None and first is not None and self.consistency_weight > 0:
                ones = torch.ones(hoi_slice.stop - hoi_slice.start, device=loss.device)
                # the first pass learns from the final pass (teacher detached), never the other way round
                terms["consistency"] = consistency_loss(first.joints3d[hoi_slice], out.joints3d[hoi_slice].detach(), ones)
                loss = loss + self.consistency_weight * terms["consistency"]
            self._step(opt_est, loss, f"round {self.phase().round} E step", terms)
        self._log_terms("e_", {**terms, "total": loss}, merged["image"].shape[0])

    # ------------------------------------------------------------------ Lightning hooks
    def training_step(self, batch: Any, batch_idx: int) -> None:
        phase = self.phase()
        if phase.name == DONE:
            self.trainer.should_stop = True
            return
        streams = stream_batches(batch)
        self._norm_stats = norm_statistics(self)  # restored by _step if an update is discarded
        self._set_modes(phase.name)
        {STAGE0: self._stage0_step, GD: self._gd_step, EST: self._est_step}[phase.name](streams)
        self.log_dict({"train/round": float(phase.round), "train/phase": float({STAGE0: 0, GD: 1, EST: 2}[phase.name]),
                       "train/schedule_step": float(self.schedule_step)}, prog_bar=False)
        self.schedule_step += 1
        self.last_boundary = phase if phase.is_last_step else None
        if self.phase().name == DONE:
            self.trainer.should_stop = True

    # ------------------------------------------------------------------ validation
    def on_validation_epoch_start(self) -> None:
        self._val = {"final": JointAccumulator(), "first": JointAccumulator(), "quality": []}

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        if dataloader_idx != 0:
            return
        with torch.no_grad():
            out = self.pipeline(batch["image"], batch["K"])
        self._val["final"].update(out.final.joints3d, out.final.joints2d, batch)
        self._val["first"].update(out.first.joints3d, out.first.joints2d, batch)
        paired = batch["has_pair"] > 0
        if paired.any():
            fake, twin = out.translated[paired], batch["image_hand_only"][paired]
            self._val["quality"].append(torch.stack([l1(fake, twin, reduction="none"), psnr(fake, twin, reduction="none"),
                                                      ssim(fake, twin, reduction="none")], dim=1).cpu())

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        gather = self.all_gather if self.trainer.world_size > 1 else None
        logged = {f"val/{k}": v for k, v in self._val["final"].compute(self.val_protocol, gather).items()}
        logged.update({f"val/first_{k}": v for k, v in self._val["first"].compute(self.val_protocol, gather).items()})
        if self._val["quality"]:
            q = torch.cat(self._val["quality"])
            q = q[torch.isfinite(q).all(dim=1)]
            if len(q):
                logged.update({"val/l1": float(q[:, 0].mean()), "val/psnr": float(q[:, 1].mean()), "val/ssim": float(q[:, 2].mean())})
        if logged:
            self.log_dict(logged, rank_zero_only=True)
        self._val = {}

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any], max_images: int = 6) -> torch.Tensor:
        """Per sample: input, rendering of the first mesh, translation, true hand-only twin, final mesh overlay."""
        n = min(max_images, batch["image"].shape[0])
        sub = {k: (v[:n] if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        return adapt_panels(sub, self.pipeline(sub["image"], sub["K"]), self.estimator.hand_model.faces)

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = ckpt_format.strip_hand_model(checkpoint["state_dict"])
        checkpoint[ckpt_format.CHECKPOINT_KEY] = ckpt_format.describe(
            "adapt", {"estimator": self.estimator, "generator": self.generator, "discriminator": self.discriminator,
                      **({"guidance": self.guidance} if self.guidance is not None else {})},
            input_size=hparams.trained_input_size(self),
        )
        phase = self.phase()
        checkpoint[SCHEDULE_KEY] = {
            "schedule_step": self.schedule_step, "phase": phase.name, "round": phase.round, "phase_step": phase.step,
            "pool": self.pool.state_dict(), "guard": self.guard.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        ckpt_format.restore_hand_model(checkpoint["state_dict"], self)
        state = checkpoint.get(SCHEDULE_KEY)
        if state:
            self.schedule_step = int(state["schedule_step"])
            self.pool.load_state_dict(state["pool"])
            self.guard.load_state_dict(state["guard"])
            torch.set_rng_state(state["torch_rng"])
