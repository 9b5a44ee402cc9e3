"""The orchestration floor: run configurations, the one run lifecycle, and the jobs behind the
command line (train with lattice growth, mnist, sample, analyze, report, scan). The libraries below
know nothing of runs or files; ``neuralrg.cli`` only wires flags onto these jobs."""

from neuralrg.jobs.config import DTYPES, EvalConfig, RunConfig, resolve_device, validate_run_config
from neuralrg.jobs.growth import growth_source, growth_stages
from neuralrg.jobs.model import RunModel, load_model
from neuralrg.jobs.sample import sample_job
from neuralrg.jobs.saved import load, save
from neuralrg.jobs.scan import scan_job
from neuralrg.jobs.scan_config import ScanConfig
from neuralrg.jobs.train import evaluate_run, grow_job, measure_run, train_job

__all__ = ["DTYPES", "EvalConfig", "RunConfig", "RunModel", "ScanConfig", "evaluate_run",
           "grow_job", "growth_source", "growth_stages", "load", "load_model", "measure_run",
           "resolve_device", "sample_job", "save", "scan_job", "train_job", "validate_run_config"]
