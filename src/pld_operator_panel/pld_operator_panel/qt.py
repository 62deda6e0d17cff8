"""Qt import shim: python_qt_binding (what rqt uses) when present, PyQt5 otherwise.

rqt loads plugins into its own Qt binding, so the widget must use that binding there; the
standalone app and the tests run on plain PyQt5.
"""

from __future__ import annotations

try:  # pragma: no cover - depends on the ROS installation
    from python_qt_binding import QtCore, QtGui, QtWidgets

    BINDING = "python_qt_binding"
except ImportError:
    from PyQt5 import QtCore, QtGui, QtWidgets

    BINDING = "PyQt5"

Signal = QtCore.pyqtSignal if hasattr(QtCore, "pyqtSignal") else QtCore.Signal
Qt = QtCore.Qt

__all__ = ["BINDING", "Qt", "QtCore", "QtGui", "QtWidgets", "Signal"]
