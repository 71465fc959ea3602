"""False alarms and power of compare's round-level test, plain and moderated, by simulation.

Each trial is one comparison of ``--cases`` cases (a suite) measured in R rounds a side, under the noise
model of tests/rounds_model.py: every case its own log-normal process spread, drawn between 1% and 3%,
with 10% of the cases four times noisier; heavy-tailed process offsets (Student t, 3 df); per-iteration
jitter and outliers within each round. In the slowed trials half of the cases are slower by the
slow-down and half are not, so one comparison gives both the power (share of affected cases judged
``regressed``) and the false-alarm rate among the unaffected ones. Policy: compare's default (threshold
5%, alpha 0.01).

* ``two runs``: baseline and current measured in separate runs (unpaired tests);
* ``A/B``: one interleaved run (``--python``, ``compare --within``), where round r of both sides ran back
  to back and shares a heavy-tailed machine state of 5% on top of each process's own offset: the paired
  tests cancel it.
* ``A/B taking turns``: the sides' workers took turns sample by sample (``--interleave samples``, the
  default): the machine's speed drifts by 20% within a round (tests/rounds_model.py: an AR(1) log speed),
  sample i of both sides shares nearly the same drift, and each process keeps its own offset. Pairing the
  round medians leaves the drift that each side's median carries; pairing the samples cancels it.

    python benchmarks/round_power.py [--trials 200] [--cases 40]
"""

from __future__ import annotations

import argparse

import numpy as np

from dlbench.regress.verdict import Policy
from tests.rounds_model import case_sigmas, draw_case_pair, draw_turns_pair, regressed_flags

SHARED_SIGMA = 0.05  # the machine state common to both sides of one A/B round


Rates = dict[str, tuple[float, float, float, float]]


Methods = dict[str, tuple[bool, bool, bool]]  # name -> (moderated, paired, by_sample)
TURNS = -1.0  # as ``shared``: the sides took turns sample by sample (draw_turns_pair)


def rates(trials: int, cases: int, rounds: int, slowdown: float, shared: float,
          methods: Methods, rng: np.random.Generator) -> Rates:
    """Per method: (share of affected cases flagged, of the affected ones that are not noisy, share of
    unaffected flagged, of the unaffected noisy ones). In A/A trials (slowdown 1) every case is unaffected."""
    policy = Policy()
    hit = {name: [0, 0, 0, 0] for name in methods}
    affected_n = quiet_n = unaffected_n = noisy_n = 0
    for _ in range(trials):
        sigmas, noisy = case_sigmas(rng, cases)
        affected = np.arange(cases) < (cases // 2 if slowdown != 1.0 else 0)
        pairs = [draw_turns_pair(rng, rounds, float(sigma), slowdown if hit_ else 1.0) if shared == TURNS
                 else draw_case_pair(rng, rounds, float(sigma), slowdown if hit_ else 1.0, shared)
                 for sigma, hit_ in zip(sigmas, affected, strict=True)]
        affected_n += int(affected.sum())
        quiet_n += int((affected & ~noisy).sum())
        unaffected_n += int((~affected).sum())
        noisy_n += int((noisy & ~affected).sum())
        for name, (moderated, paired, by_sample) in methods.items():
            flags = np.asarray(regressed_flags(pairs, policy, moderated, paired, by_sample))
            hit[name][0] += int((flags & affected).sum())
            hit[name][1] += int((flags & affected & ~noisy).sum())
            hit[name][2] += int((flags & ~affected).sum())
            hit[name][3] += int((flags & ~affected & noisy).sum())
    return {name: (h[0] / max(affected_n, 1), h[1] / max(quiet_n, 1), h[2] / max(unaffected_n, 1),
                   h[3] / max(noisy_n, 1))
            for name, h in hit.items()}


def table(title: str, trials: int, cases: int, shared: float, methods: Methods,
          rng: np.random.Generator) -> None:
    print(f"\n{title} ({trials} comparisons of {cases} cases per cell)")
    print("per method: affected cases found regressed (all, not noisy) / unaffected flagged (all, noisy)")
    print(f"{'R':>2} {'slow-down':>9} " + " ".join(f"{name:>36}" for name in methods))
    for rounds in (2, 3, 5):
        for slowdown in (1.0, 1.05, 1.10, 1.20):
            found = rates(trials, cases, rounds, slowdown, shared, methods, rng)
            cells = []
            for name in methods:
                power, quiet, alarms, noisy = found[name]
                shown = "-" if slowdown == 1.0 else f"{power:.1%} ({quiet:.1%})"
                cells.append(f"{shown:>15} / {alarms:.2%} ({noisy:.1%})")
            label = "A/A" if slowdown == 1.0 else f"{slowdown - 1:.0%}"
            print(f"{rounds:>2} {label:>9} " + " ".join(f"{c:>36}" for c in cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--only", choices=("runs", "ab", "turns"), help="one table only")
    args = parser.parse_args()
    rng = np.random.default_rng(2004)
    if args.only in (None, "runs"):
        table("two runs", args.trials, args.cases, 0.0,
              {"t (pooled)": (False, False, False), "moderated t (default)": (True, False, False)}, rng)
    if args.only in (None, "ab"):
        table("one A/B run, rounds back to back (--interleave rounds)", args.trials, args.cases, SHARED_SIGMA,
              {"t (pooled)": (False, False, False), "moderated t": (True, False, False),
               "paired moderated t (default)": (True, True, False)}, rng)
    if args.only in (None, "turns"):
        table("one A/B run taking turns (--interleave samples)", args.trials, args.cases, TURNS,
              {"moderated t": (True, False, False), "round-paired moderated t": (True, True, False),
               "sample-paired moderated t (default)": (True, True, True)}, rng)


if __name__ == "__main__":
    main()
