# The class hub on one machine: `jupyterhub -f deploy/jupyterhub/jupyterhub_config.py`, run from
# a cloudlabs checkout after `make classroom`, as root (each student's server then gets a user id
# of its own). Every setting is a CLOUDLABS_HUB_* variable (docs/classroom.md); the logic is in
# grader/hub.py and grader/hub_spawner.py, where it is tested.
from grader.hub import configure

configure(get_config())  # noqa: F821
