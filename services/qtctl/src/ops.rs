//! Operations: commands on the `control` stream, and dead-letter handling.

use std::io::Write;

use anyhow::Context;
use qt_events::ids::new_event_id;
use qt_events::{
    CloseAll, DeadLettered, Envelope, Event, ResumeTrading, RetrainNow, SetKillSwitch, Stream,
};
use serde_json::json;

use crate::streams::{Ctx, entry_json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, clap::Args)]
pub struct KillSwitchArgs {
    state: OnOff,
    /// Why, for the audit trail.
    #[arg(long, default_value = "operator")]
    reason: String,
}

#[derive(Debug, clap::Args)]
pub struct ReasonArgs {
    /// Why, for the audit trail.
    #[arg(long, default_value = "operator")]
    reason: String,
}

#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// Why it is safe to trade again, for the audit trail (required).
    #[arg(long)]
    reason: String,
}

#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// The latest dead letters with their reason.
    List {
        #[arg(short = 'n', long, default_value_t = 20)]
        count: usize,
    },
    /// Puts dead letters back on the stream they came from (unchanged), then removes them.
    Replay(Select),
    /// Deletes dead letters.
    Purge(Select),
}

#[derive(Debug, clap::Args)]
pub struct Select {
    /// Dead-letter entry ids (as `dlq list` shows them).
    ids: Vec<String>,
    /// Every dead letter.
    #[arg(long, conflicts_with = "ids")]
    all: bool,
}

fn requested_by() -> String {
    format!(
        "qtctl@{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

async fn send(ctx: &Ctx, event: Event) -> anyhow::Result<()> {
    ctx.check_redis().await?;
    let env = ctx.bus.envelope(event);
    let entry = ctx
        .bus
        .publish(&env)
        .await
        .context("publishing to the control stream")?;
    if ctx.json {
        println!(
            "{}",
            json!({ "entry_id": entry, "event_id": env.id, "type": env.type_name() })
        );
    } else {
        println!(
            "{} sent to {} as {} (event {})",
            env.type_name(),
            ctx.bus.key(Stream::Control),
            entry,
            env.id
        );
    }
    Ok(())
}

pub async fn kill_switch(ctx: &Ctx, a: KillSwitchArgs) -> anyhow::Result<()> {
    let enabled = a.state == OnOff::On;
    send(
        ctx,
        Event::SetKillSwitch(SetKillSwitch {
            command_id: new_event_id(),
            enabled,
            reason: a.reason,
            requested_by: requested_by(),
        }),
    )
    .await
}

/// Resumes entries after the drawdown breaker tripped (execution clears the halt and measures
/// the drawdown again from the current equity; nothing happens without a trip).
pub async fn resume(ctx: &Ctx, a: ResumeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!a.reason.trim().is_empty(), "--reason must say why");
    send(
        ctx,
        Event::ResumeTrading(ResumeTrading {
            command_id: new_event_id(),
            reason: a.reason,
            requested_by: requested_by(),
        }),
    )
    .await
}

pub async fn close_all(ctx: &Ctx, a: ReasonArgs) -> anyhow::Result<()> {
    send(
        ctx,
        Event::CloseAll(CloseAll {
            command_id: new_event_id(),
            reason: a.reason,
            requested_by: requested_by(),
        }),
    )
    .await
}

pub async fn retrain(ctx: &Ctx, a: ReasonArgs) -> anyhow::Result<()> {
    send(
        ctx,
        Event::RetrainNow(RetrainNow {
            command_id: new_event_id(),
            reason: a.reason,
            requested_by: requested_by(),
        }),
    )
    .await
}

/// The dead letters selected, as (dlq entry id, letter).
async fn selected(ctx: &Ctx, sel: &Select) -> anyhow::Result<Vec<(String, DeadLettered)>> {
    anyhow::ensure!(
        sel.all || !sel.ids.is_empty(),
        "name dead-letter ids, or --all"
    );
    let key = ctx.bus.key(Stream::Dlq);
    let entries = ctx.bus.range(&key, "-", "+", 100_000).await?;
    let mut out = Vec::new();
    for e in entries {
        if !sel.all && !sel.ids.contains(&e.id) {
            continue;
        }
        match Envelope::from_fields(e.field_pairs()) {
            Ok(Envelope {
                event: Event::DeadLettered(d),
                ..
            }) => out.push((e.id, d)),
            _ => eprintln!("qtctl: {} in {key} is not a dead letter; left alone", e.id),
        }
    }
    if !sel.all {
        for id in &sel.ids {
            anyhow::ensure!(
                out.iter().any(|(i, _)| i == id),
                "no dead letter {id} in {key}"
            );
        }
    }
    Ok(out)
}

pub async fn dlq(ctx: &Ctx, cmd: DlqCommand) -> anyhow::Result<()> {
    ctx.check_redis().await?;
    let key = ctx.bus.key(Stream::Dlq);
    let mut out = std::io::stdout().lock();
    match cmd {
        DlqCommand::List { count } => {
            let entries = ctx.bus.last(&key, count).await?;
            if ctx.json {
                for e in &entries {
                    writeln!(out, "{}", entry_json(e))?;
                }
                return Ok(());
            }
            writeln!(
                out,
                "{:<18} {:<14} {:<18} {:>5}  REASON",
                "ID", "FROM", "ORIGIN ID", "TRIES"
            )?;
            for e in &entries {
                if let Ok(Envelope {
                    event: Event::DeadLettered(d),
                    ..
                }) = Envelope::from_fields(e.field_pairs())
                {
                    writeln!(
                        out,
                        "{:<18} {:<14} {:<18} {:>5}  {}",
                        e.id, d.stream, d.entry_id, d.deliveries, d.reason
                    )?;
                }
            }
        }
        DlqCommand::Replay(sel) => {
            for (id, d) in selected(ctx, &sel).await? {
                let fields: Vec<(String, Vec<u8>)> =
                    d.fields.into_iter().map(|f| (f.name, f.value)).collect();
                let new_id = ctx.bus.append_raw(&d.stream, &fields).await?;
                ctx.bus.delete(&key, std::slice::from_ref(&id)).await?;
                writeln!(out, "replayed {id} onto {} as {new_id}", d.stream)?;
            }
        }
        DlqCommand::Purge(sel) => {
            let ids: Vec<String> = selected(ctx, &sel)
                .await?
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let n = ctx.bus.delete(&key, &ids).await?;
            writeln!(out, "purged {n} dead letter(s)")?;
        }
    }
    Ok(())
}
