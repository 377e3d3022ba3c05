//! `pinstream maintain`: one-off maintenance of every table of a lake (local or S3):
//! compaction, vacuum, and a checkpoint when one is due. One line per table on stdout.

use super::{Error, io_runtime};
use crate::analytics::AGGREGATES;
use crate::config::{MaintainArgs, MaintainConfig};
use crate::sink::delta::lake_url;
use crate::sink::maintain;
use crate::table::Table;

/// The tables under a lake, by their path below the root: `pin`, `geo`, `user`,
/// `quarantine` and `aggregates/<name>` for every aggregate.
fn table_names() -> Vec<String> {
    Table::ALL
        .iter()
        .map(|table| table.name().to_owned())
        .chain(
            AGGREGATES
                .iter()
                .map(|aggregate| format!("aggregates/{}", aggregate.name)),
        )
        .collect()
}

pub fn maintain(args: &MaintainArgs) -> Result<(), Error> {
    let config = MaintainConfig::resolve(args)?;
    let runtime = io_runtime()?;
    runtime.block_on(async {
        let root = lake_url(&config.lake).map_err(sink_error)?;
        let mut found = 0;
        for name in table_names() {
            let Some(mut table) = maintain::open(&root, &name).await.map_err(sink_error)? else {
                continue;
            };
            found += 1;
            let report = maintain::maintain_table(
                &mut table,
                &name,
                config.compaction.as_ref(),
                config.vacuum,
            )
            .await
            .map_err(sink_error)?;
            println!("{report}");
        }
        if found == 0 {
            return Err(Error::Config(crate::config::ConfigError::Invalid(format!(
                "no pinstream tables under {root}"
            ))));
        }
        Ok(())
    })
}

fn sink_error(error: crate::sink::SinkError) -> Error {
    Error::Engine(error.into())
}
