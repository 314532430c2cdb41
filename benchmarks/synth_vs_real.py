"""Real iMiGUE / SMG statistics against the synthetic world's, side by side, with tolerances (issue 26).

    .venv/bin/python benchmarks/synth_vs_real.py [--preset default] [--seed 2024] [--realdata ../shared/realdata (or $MIGA_REALDATA)]

Both sides are measured by `miga.synth.calibration`. Real: video 298's OpenPose JSON (extracted from the
tarball to a temp folder), `labels_dev.csv`, `smg_finelabels_train_val.csv`; without the realdata folder the
embedded reference figures (`calibration.REAL`) are used. Synthetic: a release of the preset generated into a
temp folder (organisers' SMG layout, 2023 iMiGUE layout) and read back through the dataset readers.
A statistic without a tolerance is shown but "not calibrated". Exit status 1 if a calibrated one fails.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from miga.synth import calibration as cal  # noqa: E402
from miga.synth import generate_imigue, generate_smg, get_preset  # noqa: E402
from benchmarks.realdata import REALDATA  # noqa: E402


def real_figures(realdata: Path | None, tmp: Path) -> tuple[dict, str]:
    if realdata is None or not (realdata / "imigue_real" / "298_openpose_json.tar.gz").exists():
        return cal.REAL, "embedded (calibration.REAL)"
    imigue = realdata / "imigue_real"
    with tarfile.open(imigue / "298_openpose_json.tar.gz") as tar:
        tar.extractall(tmp, filter="data")
    return {
        "imigue_motion": cal.real_imigue_motion(tmp / "298", imigue / "labels_dev.csv"),
        "imigue_labels": cal.real_imigue_labels(imigue / "labels_dev.csv"),
        "smg": cal.real_smg(realdata / "smg_real" / "smg_finelabels_train_val.csv"),
    }, f"measured ({realdata})"


def synthetic_figures(preset: str, seed: int, tmp: Path) -> dict:
    config = get_preset(preset)
    generate_imigue(tmp / "imigue", config.imigue, seed)
    generate_smg(tmp / "smg", config.smg, seed)
    motion, labels = cal.synthetic_imigue(tmp / "imigue")
    return {"imigue_motion": motion, "imigue_labels": labels, "smg": cal.synthetic_smg(tmp / "smg")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--realdata", type=Path, default=REALDATA)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        real, source = real_figures(args.realdata, tmp / "real")
        real_s = time.perf_counter() - start
        start = time.perf_counter()
        synth = synthetic_figures(args.preset, args.seed, tmp / "synth")
        synth_s = time.perf_counter() - start
    print(f"real: {source} ({real_s:.1f} s); synthetic: preset {args.preset}, seed {args.seed}, "
          f"{synth['imigue_motion']['clips']} iMiGUE clips, {synth['smg']['sequences']} SMG sequences "
          f"(generated and measured in {synth_s:.1f} s)")
    print(f"{'statistic':<44} {'real':>10} {'synthetic':>10} {'ratio':>6}  {'tolerance':<14} result")
    failed = 0
    for (group, key), what in cal.STATISTICS.items():
        r, s = real[group][key], synth[group][key]
        rule = cal.TOLERANCES.get((group, key))
        verdict = "not calibrated" if rule is None else ("pass" if cal.within(r, s, rule) else "FAIL")
        failed += verdict == "FAIL"
        ratio = f"{s / r:6.2f}" if r else "     -"
        print(f"{what:<44} {r:>10.4g} {s:>10.4g} {ratio}  {cal.describe(rule):<14} {verdict}")
    print(f"{failed} calibrated statistic(s) outside tolerance")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
