"""The quality bench's configurations: what bench/quality.py runs and bench/quality_report.py describes."""

# name -> (what it is, nstyle.settings.run_settings arguments; "{size}" is the output's long edge). "peer" is
# bench/peer.py, on PyTorch whatever --backend says.
CONFIGURATIONS = {
    "example": ("the example's method: NAG from noise, its heads and weights, one scale",
                {"optimizer": "nag", "precision": "float32"}),
    "lbfgs-1scale": ("L-BFGS from the content image, one scale, float32",
                  {"optimizer": "lbfgs", "scales": ["{size}"], "scale_epochs": [40], "precision": "float32"}),
    "adam-1scale": ("Adam from the content image, one scale, float32",
                 {"optimizer": "adam", "scales": ["{size}"], "scale_epochs": [150], "precision": "float32"}),
    "adam-pyramid": ("Adam from the content image, coarse to fine (defaults), float32",
                     {"optimizer": "adam", "precision": "float32"}),
    "lbfgs-pyramid": ("L-BFGS from the content image, coarse to fine (defaults), precision auto",
                      {"optimizer": "lbfgs", "precision": "auto"}),
    "default-fp32": ("run.py's defaults (optimizer auto: L-BFGS on a CPU, Adam on a GPU; coarse to fine) in float32",
                     {"precision": "float32"}),
    "default": ("run.py's defaults (optimizer auto: L-BFGS on a CPU, Adam on a GPU; coarse to fine; precision auto)",
                {"precision": "auto"}),
    "default-tf32": ("run.py's defaults in tfloat32 (cuDNN's TF32 convolutions: torch on an Ampere or newer GPU)",
                     {"precision": "tfloat32"}),
    "default-lean": ("run.py's defaults with 20, 8 and 8 evaluations at 128, 256 and 512 px (the AVX2 time lever; "
                     "--size 512 only)", {"precision": "auto", "scale_epochs": [20, 8, 8]}),
    "peer": ("the peer: a plain PyTorch L-BFGS script (bench/peer.py), one scale, float32", None),
}
OPT_IN = ("lbfgs-pyramid", "default-tf32", "default-lean")  # not in --configs' default list
