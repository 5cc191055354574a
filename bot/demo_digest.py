"""Demo part 3: the digests of the scenario (figures of the last 7 days) and their chart files."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.demo import Demo


def digest_scenario(demo: Demo) -> None:
    from bot.cli_digest import render_digest_text
    from bot.services.digest_periods import period_ending

    demo.settle()
    demo.print("\n━━ 8. The weekly digests (here: the 7 days up to now, as `/askdesk digest` shows them) ━━")
    demo.print("   With only a handful of answers, satisfaction stays hidden: the anonymity rule needs at least "
               f"{max(3, demo.settings.surveys.anonymity_threshold)} answers per figure.")
    period = period_ending(demo.deps.now(), demo.settings.workspace.timezone)
    charts = demo.out_dir / "charts"
    charts.mkdir(exist_ok=True)
    for slug in [t.slug for t in demo.settings.teams] + (["*"] if demo.settings.workspace.leadership_channel else []):
        demo.print("")
        demo.print(render_digest_text(demo.deps, slug, period, chart_dir=charts))
    files = sorted(p.name for p in charts.glob("*.png"))
    demo.print(f"\nCharts written to {charts}/: {', '.join(files)}")
