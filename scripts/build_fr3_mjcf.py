"""Build the offline FR3 model franka-sim needs (run with the franka-sim venv's Python).

franka-sim downloads its MuJoCo model unless ``FR3_MJCF`` points at one. Its wheel ships
``franka_sim/models/fr3.urdf``, whose meshes (package://franka_description/...) are not in the
wheel, so the visual and collision elements are dropped: a kinematic + inertial model (no
contacts, so no self-collision checks in the sim). Joint armature 0.195 (rotor inertia).
Usage: python build_fr3_mjcf.py OUT.xml
"""

import sys
import xml.etree.ElementTree as ET
from importlib.resources import files

import mujoco


def main(out: str) -> None:
    root = ET.parse(str(files("franka_sim") / "models" / "fr3.urdf")).getroot()
    for link in root.iter("link"):
        for tag in ("visual", "collision"):
            for element in link.findall(tag):
                link.remove(element)
    model = mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))
    model.dof_armature[:] = 0.195
    mujoco.mj_saveLastXML(out, model)
    print(f"wrote {out}: {model.njnt} joints, {model.nbody} bodies")


if __name__ == "__main__":
    main(sys.argv[1])
