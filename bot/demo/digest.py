"""Demo part 4: the digests of the scenario (figures of the last 7 days) and their chart files."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.demo.run import Demo


def digest_scenario(demo: Demo) -> None:
    from bot.cli.digest import render_digest_text
    from bot.demo.seed import seed_history
    from bot.services.digest_periods import period_ending

    demo.settle()
    demo.print("\n━━ 12. The weekly digests (here: the 7 days up to now, as `/askdesk digest` shows them) ━━")
    seeded = seed_history(demo.deps.engine, demo.settings, demo.deps.now())
    demo.print(f"   (For the comparison and the 8-week charts the demo first adds {seeded} synthetic resolved and "
               "surveyed requests of earlier weeks.)")
    demo.print("   Satisfaction is always about the last whole week (Monday to Monday) and shown only where at "
               f"least {max(3, demo.settings.surveys.anonymity_threshold)} answers exist (the anonymity rule); "
               "smaller groups stay hidden.")
    period = period_ending(demo.deps.now(), demo.settings.workspace.timezone)
    charts = demo.out_dir / "charts"
    charts.mkdir(exist_ok=True)
    for slug in [t.slug for t in demo.settings.teams] + (["*"] if demo.settings.workspace.leadership_channel else []):
        demo.print("")
        demo.print(render_digest_text(demo.deps, slug, period, chart_dir=charts))
    files = sorted(p.name for p in charts.glob("*.png"))
    demo.print(f"\nCharts written to {charts}/: {', '.join(files)}")
