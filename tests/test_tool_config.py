"""decssl_mm.utils.tool_config: configs and models as the Runner sees them."""
from mmengine.config import Config

from decssl_mm.utils.tool_config import load_tool_config, model_cfg_like_runner


def test_model_cfg_gets_the_top_level_preprocessor_without_mutation():
    cfg = Config(dict(model=dict(type='ImageClassifier'),
                      data_preprocessor=dict(type='ClsDataPreprocessor',
                                             mean=[1.0])))
    out = model_cfg_like_runner(cfg)
    assert out['data_preprocessor'] == dict(type='ClsDataPreprocessor',
                                            mean=[1.0])
    assert 'data_preprocessor' not in cfg.model  # a copy
    own = dict(type='X', data_preprocessor=dict(type='Mine'))
    assert model_cfg_like_runner(cfg, own)['data_preprocessor'] == dict(
        type='Mine')
    assert 'data_preprocessor' not in model_cfg_like_runner(
        Config(dict(model=dict(type='Y'))))


def test_load_tool_config_applies_options_and_scope(tmp_path):
    from mmengine.registry import DefaultScope
    path = tmp_path / 'c.py'
    path.write_text("model = dict(type='A', depth=18)\n")
    cfg = load_tool_config(str(path), {'model.depth': 50})
    assert cfg.model.depth == 50
    assert DefaultScope.get_current_instance().scope_name == 'decssl_mm'
