"""Sweeps: grids of training runs, each evaluated beside its untrained
references, written to one results file (``tools/analysis/sweep.py``)."""
from .execute import (checkpoint_info, cleanup, evaluate_point,
                      finished_checkpoint, print_plan, run_point,
                      train_command, train_point)
from .eval_settings import (eval_options, eval_settings,
                            parse_eval_options, sweep_evaluations)
from .grid import (KEY_ALIASES, PARTITION_KEY, RESULTS_FORMAT,
                   RESULTS_VERSION, Assignment, Axis, SweepError,
                   apply_assignments, parse_cfg_options, parse_grid,
                   parse_seeds, parse_value, parse_variants,
                   partition_from_spec, rel, split_top_level)
from .plan import (Point, build_point, derived_fields, eval_loaders, plan,
                   point_cost, point_images, point_work)
from .results import (append_result, code_version, load_results,
                      make_record, mixed_code_versions, summary_line)

__all__ = [
    'checkpoint_info', 'cleanup', 'evaluate_point', 'finished_checkpoint',
    'print_plan', 'run_point', 'train_command', 'train_point', 'KEY_ALIASES',
    'PARTITION_KEY', 'RESULTS_FORMAT', 'RESULTS_VERSION', 'Assignment',
    'Axis', 'SweepError', 'apply_assignments', 'parse_cfg_options',
    'parse_grid', 'parse_seeds', 'parse_value', 'parse_variants',
    'partition_from_spec', 'rel', 'split_top_level', 'Point', 'build_point',
    'derived_fields', 'eval_loaders', 'eval_settings', 'plan', 'point_cost',
    'point_images', 'point_work', 'eval_options', 'parse_eval_options',
    'sweep_evaluations',
    'append_result', 'code_version', 'load_results', 'make_record',
    'mixed_code_versions', 'summary_line'
]
