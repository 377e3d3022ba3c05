// TEMPORARY stub until the emulator branch lands.
use super::*;
#[derive(Clone, Debug, PartialEq, Default)]
pub struct EmulatorSpec {
    pub seed: u64,
    pub events: Option<u64>,
    pub rate: Option<f64>,
    pub universe: u64,
    pub partitions: u32,
}
impl EmulatorSpec {
    pub fn parse(_s: &str) -> Result<Self, SourceError> {
        Ok(Self::default())
    }
}
pub struct EmulatorSource;
impl EmulatorSource {
    pub fn new(_s: &EmulatorSpec, _w: usize, _p: usize) -> Self {
        EmulatorSource
    }
}
impl Source for EmulatorSource {
    fn partitions(&self) -> Vec<PartitionId> {
        vec![]
    }
    fn seek(&mut self, _from: &Positions) -> Result<(), SourceError> {
        Ok(())
    }
    fn poll(&mut self, _max: usize, _out: &mut Vec<RawRecord>) -> Result<PollStatus, SourceError> {
        Ok(PollStatus::Exhausted)
    }
    fn positions(&self) -> Positions {
        Positions::new()
    }
}
pub fn write_files(_spec: &EmulatorSpec, _dir: &std::path::Path) -> std::io::Result<u64> {
    Ok(0)
}
