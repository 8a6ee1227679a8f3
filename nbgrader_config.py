"""nbgrader configuration: solutions/ is the source directory, labs/ the student release.

Course workspaces (submissions, autograded notebooks, feedback, the gradebook) live in
course-work/, which git ignores. `cloudlabs grade` keeps its own workspace per run (--out).
"""

from pathlib import Path

from grader.nbgrader_glue import CODE_STUB, IGNORED

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

here = Path(__file__).resolve().parent
c.CourseDirectory.root = str(here)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "labs"
c.CourseDirectory.submitted_directory = "course-work/submitted"
c.CourseDirectory.autograded_directory = "course-work/autograded"
c.CourseDirectory.feedback_directory = "course-work/feedback"
c.CourseDirectory.db_url = f"sqlite:///{here / 'course-work' / 'gradebook.db'}"
c.CourseDirectory.ignore = IGNORED  # checks.py is never released
c.ClearSolutions.code_stub = CODE_STUB
