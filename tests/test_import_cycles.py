"""No import cycles between decssl_mm's modules.

The imports of every ``decssl_mm`` source file are read from its syntax tree
(relative imports resolved; imports under ``if TYPE_CHECKING:``, which never
run, are not counted) and the resulting graph must have no cycle. Nothing
is imported.

Two graphs are checked. The module-level one (what runs on import) must be
acyclic or importing fails. The one that also counts imports inside
functions must be acyclic too: an import moved into a function to dodge a
cycle hides a dependency cycle between the two modules rather than removing
it.
"""
import ast
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Set

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = 'decssl_mm'


def module_files(root: str = ROOT,
                 package: str = PACKAGE) -> Dict[str, str]:
    """Map every module name of ``package`` to its source file."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(osp.join(root, package)):
        dirnames[:] = sorted(d for d in dirnames if d != '__pycache__')
        for name in filenames:
            if not name.endswith('.py'):
                continue
            rel = osp.relpath(osp.join(dirpath, name), root)[:-3]
            parts = rel.split(os.sep)
            if parts[-1] == '__init__':
                parts = parts[:-1]
            files['.'.join(parts)] = osp.join(dirpath, name)
    return files


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == 'TYPE_CHECKING') or (
        isinstance(test, ast.Attribute) and test.attr == 'TYPE_CHECKING')


def module_imports(tree: ast.Module,
                   in_functions: bool = False) -> Iterator[ast.stmt]:
    """Import statements of a module.

    Args:
        tree (ast.Module): The parsed module.
        in_functions (bool): Also yield imports inside function bodies
            (run when the function is called). Defaults to False: only what
            runs when the module is imported (module and class bodies,
            ``if``/``try``/``with`` blocks).

    Yields:
        ast.Import | ast.ImportFrom: The import statements.
    """
    stack: List[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                and not in_functions:
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
        else:
            stack.extend(child for child in ast.iter_child_nodes(node)
                         if isinstance(child, ast.stmt)
                         or isinstance(child, ast.excepthandler))


def _resolve_base(module: str, is_package: bool, node: ast.ImportFrom
                  ) -> Optional[str]:
    if node.level == 0:
        return node.module
    parts = module.split('.')
    if not is_package:
        parts = parts[:-1]
    if node.level > 1:
        parts = parts[:len(parts) - (node.level - 1)]
    if node.module:
        parts = parts + node.module.split('.')
    return '.'.join(parts) or None


def import_graph(files: Dict[str, str],
                 in_functions: bool = False) -> Dict[str, Set[str]]:
    """Edges ``module -> imported module`` between the modules of ``files``.

    Args:
        files (dict): Module name to source file, see :func:`module_files`.
        in_functions (bool): Count imports inside functions too.

    Returns:
        dict[str, set[str]]: The imported modules of each module.
    """
    graph: Dict[str, Set[str]] = {}
    for module, path in files.items():
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
        is_package = path.endswith('__init__.py')
        targets: Set[str] = set()
        for node in module_imports(tree, in_functions):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = _resolve_base(module, is_package, node)
            if base is None:
                continue
            for alias in node.names:
                sub = f'{base}.{alias.name}'
                targets.add(sub if sub in files else base)
        graph[module] = {t for t in targets if t in files and t != module}
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: List[str]) -> Optional[List[str]]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [])
            if found:
                return found
    return None


def all_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Every cycle found by removing one edge of each found cycle in turn."""
    graph = {k: set(v) for k, v in graph.items()}
    cycles = []
    while True:
        cycle = find_cycle(graph)
        if cycle is None:
            return cycles
        cycles.append(cycle)
        graph[cycle[-2]].discard(cycle[-1])


# ------------------------------------------------------------------ tests
def _graph(tmp_path, sources: Dict[str, str],
           in_functions: bool = False) -> Dict[str, Set[str]]:
    for rel, text in sources.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return import_graph(module_files(str(tmp_path), 'pkg'), in_functions)


def test_detector_finds_relative_and_absolute_cycles(tmp_path):
    graph = _graph(tmp_path, {
        'pkg/__init__.py': '',
        'pkg/sub/__init__.py': 'from .a import f\n',
        'pkg/sub/a.py': 'from ..b import g\n',
        'pkg/b.py': 'import os\nfrom pkg.sub import a\n',
    })
    assert graph['pkg.sub'] == {'pkg.sub.a'}
    assert graph['pkg.sub.a'] == {'pkg.b'}
    assert graph['pkg.b'] == {'pkg.sub.a'}
    assert find_cycle(graph) == ['pkg.b', 'pkg.sub.a', 'pkg.b']


def test_detector_separates_function_local_and_type_checking_imports(
        tmp_path):
    sources = {
        'pkg/__init__.py': '',
        'pkg/a.py': 'from . import b\n',
        'pkg/b.py': ('from typing import TYPE_CHECKING\n'
                     'if TYPE_CHECKING:\n    from .c import x\n'
                     'def f():\n    from .a import y\n'
                     'class C:\n    def m(self):\n        import pkg.a\n'),
        'pkg/c.py': 'from .b import f\n',
    }
    graph = _graph(tmp_path, sources)
    assert graph['pkg.a'] == {'pkg.b'}
    assert graph['pkg.b'] == set()
    assert find_cycle(graph) is None
    deferred = _graph(tmp_path, sources, in_functions=True)
    assert deferred['pkg.b'] == {'pkg.a'}  # never pkg.c (TYPE_CHECKING)
    assert find_cycle(deferred) == ['pkg.a', 'pkg.b', 'pkg.a']


def test_detector_counts_imports_in_try_and_class_bodies(tmp_path):
    graph = _graph(tmp_path, {
        'pkg/__init__.py': '',
        'pkg/a.py': 'try:\n    import pkg.b\nexcept ImportError:\n    pass\n',
        'pkg/b.py': 'class C:\n    from pkg import a\n',
    })
    assert find_cycle(graph) == ['pkg.a', 'pkg.b', 'pkg.a']


def _assert_acyclic(in_functions: bool) -> None:
    files = module_files()
    assert 'decssl_mm.utils.io' in files and len(files) > 30
    cycles = all_cycles(import_graph(files, in_functions))
    assert not cycles, 'import cycles in decssl_mm:\n' + '\n'.join(
        ' -> '.join(c) for c in cycles)


def test_no_module_level_import_cycles_in_decssl_mm():
    _assert_acyclic(in_functions=False)


def test_no_import_cycles_through_function_local_imports():
    _assert_acyclic(in_functions=True)
