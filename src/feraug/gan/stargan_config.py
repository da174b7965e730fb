"""The settings of :class:`feraug.gan.stargan.StarGan` (what each loss and network option
does is said beside it)."""

from __future__ import annotations

from pydantic import Field

from feraug.gan.editing import EditConfig


class StarGanConfig(EditConfig):
    """stargan settings (networks sized for 48 px)."""

    batch_size: int = Field(16, ge=1)
    source: str | None = Field("neutral", description="emotion of the real faces sample() "
                               "translates (null: any emotion)")
    lr: float = Field(1e-4, gt=0)
    lambda_cls: float = Field(1.0, ge=0)
    lambda_rec: float = Field(10.0, ge=0)
    lambda_identity: float = Field(0.0, ge=0, description="times lambda_rec: L1 between a face "
                                   "translated into its own emotion and the face itself, so "
                                   "the translator learns to leave alone what an emotion does "
                                   "not need (CycleGAN's identity loss)")
    n_critic: int = Field(1, ge=1, description="discriminator steps per generator step")
    balanced: bool = Field(True, description="equal images per class in every batch")
    d_lr_mult: float = Field(1.0, gt=0, description="the discriminator's learning rate as a "
                             "multiple of lr (two time-scale update rule, Heusel et al. 2017): "
                             "a discriminator that learns faster can tell edits from real faces")
    lambda_adv: float = Field(1.0, ge=0, description="weight of the generator's adversarial "
                              "loss (realism) against the guide and the emotion head")
    d_score_gain: float = Field(1.0, gt=0, description="factor on the spectral-norm "
                                "discriminator's real/fake scores (a steeper critic than "
                                "1-Lipschitz, whose scores of edits and real faces stay far "
                                "inside the hinge margin)")
    d_spectral_norm: bool = Field(True, description="spectrally normalised critic; false: "
                                  "plain convolutions, to be regularised by r1_gamma")
    d_extra_layers: int = Field(0, ge=0, description="3 x 3 convolutions added to the "
                                "critic's trunk at 1/4 resolution (each widens what one "
                                "score sees by 8 px)")
    r1_gamma: float = Field(0.0, ge=0, description="weight of the R1 penalty (gamma / 2 x "
                            "squared gradient norm of the critic at real faces); 0: off")
    r1_every: int = Field(4, ge=1, description="apply R1 every this many critic steps, scaled "
                          "by it (StyleGAN2's lazy regularisation: the double backward costs "
                          "about a critic step)")
    conditional_d: bool = Field(False, description="the discriminator's real/fake map has one "
                                "channel per emotion: a translated face is judged against "
                                "real faces of its target emotion (projection-style)")
    d_mismatch: float = Field(0.0, ge=0, lt=1, description="with conditional_d: the share "
                              "of the critic's negatives that are real faces asked about "
                              "another emotion, the rest being edits (the matching-aware "
                              "critic of Reed et al. 2016: 0.5), so that a real face only "
                              "passes as the emotion it shows; 0: off")
    lambda_feature_match: float = Field(0.0, ge=0, description="weight of the distance "
                                        "(unbiased linear MMD, relative to the real features' "
                                        "squared norm) between the guides' penultimate "
                                        "features of faces made as each emotion and of the "
                                        "batch's real faces of it: the guide asks for the "
                                        "features real faces of the emotion have, not only "
                                        "for its decision (0: off; needs a guide)")
    style_dim: int = Field(0, ge=0, description="size of a random style code that shifts "
                           "the bottleneck's per-emotion scales and shifts, so that one face "
                           "can become several versions of an emotion (StarGAN v2); 0: one "
                           "deterministic edit per face and emotion")
    style_init: float = Field(0.0, ge=0, description="with style_dim: std of the shift of "
                              "the bottleneck's scales and shifts that a unit-normal code "
                              "makes before training (StarGAN v2's AdaIN uses its code from "
                              "the first step); 0: the style layers start at zero and an "
                              "untrained code changes nothing")
    lambda_ds: float = Field(0.0, ge=0, description="with style_dim: weight of the "
                             "diversity-sensitive loss (the mean absolute difference of two "
                             "edits of the same faces under two codes, maximised; Mao et al. "
                             "2019), without which a generator learns to ignore the code")
    lambda_sty: float = Field(0.0, ge=0, description="with style_dim: weight of the style "
                              "reconstruction loss: a style encoder trained with the "
                              "generator must read the code back from the edit (L1), so a "
                              "code has to change the face (StarGAN v2); 0: off")
    style_reference: bool = Field(False, description="with lambda_sty: StarGAN v2's "
                                  "reference paths, which give the style encoder a job on "
                                  "real faces from the first step: the translation back to "
                                  "the source emotion uses the encoder's code of the source "
                                  "face (so the code must carry what the edit removed), and "
                                  "half of the edits use the code of a real face of the "
                                  "target emotion from the batch (random codes otherwise)")
    lambda_reference_match: float = Field(0.0, ge=0, description="with style_reference and a "
                                          "guide: weight of the cosine distance between the "
                                          "guides' features of an edit and of the real face "
                                          "its code was read from, which gives a code read "
                                          "from a face a meaning the generator must honour; "
                                          "0: off")
    ema_kimg: float = Field(0.0, ge=0, description="half-life (thousands of images) of an "
                            "exponential moving average of the generator's weights that "
                            "translates at sampling time; 0: off, the trained weights translate")
    ema_rampup: float = Field(0.05, ge=0, description="EMA half-life <= rampup x images seen")
    reference_bank: int = Field(256, ge=1, description="with edit: paste, the real training "
                                "faces kept per emotion (in the checkpoint) to paste from "
                                "when sampling")
