"""Install decssl_mm (``pip install -e .``; see tools/setup_env.sh)."""
import os.path as osp

from setuptools import find_packages, setup


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'decssl_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='decssl_mm',
    version=get_version(),
    description='Decentralized self-supervised learning (Dec-SSL) for the '
    'OpenMMLab 2.x toolbox',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'benchmarks')),
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.1,<=2.14.1',
        'torchvision>=0.16,<=0.29.1',
        'mmengine==0.10.7',
        'mmcv>=2.0.0,<2.2.0',
        'mmpretrain==1.2.0',
        'numpy>=1.24,<3',
    ],
    extras_require={
        'downstream': ['mmdet==3.3.0', 'mmsegmentation==1.2.2',
                       'pycocotools>=2.0.7', 'ftfy', 'regex'],
        'tools': ['matplotlib>=3.7'],
        'tests': ['pytest>=7', 'hypothesis>=6', 'psutil'],
        # pretraining across sites (decssl_mm.flower; docs/deploy.md)
        'flower': ['flwr==1.42.*'],
    },
    license='Apache License 2.0',
    zip_safe=False,
)
