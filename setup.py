"""Build configuration beyond pyproject.toml: the optional compiled core.

``tlslog._linescan`` (a small C extension, `tlslog/_linescan.c`) is built when a C compiler is
there; ``optional=True`` lets the install go on without it, and tlslog then runs its
pure-Python scan, which gives the same results (README, Performance).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("tlslog._linescan", ["tlslog/_linescan.c"], optional=True)])
