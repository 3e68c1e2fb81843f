"""The web UI's HTML pages: one routes table (``routes``) the app includes beside the API.

Each page is a small endpoint (in ``pages_*.py``) that calls ``glasspane.queries`` through
the app's Workspace and renders one template from ``ui/templates``; the forms post back here
(cancel, retry, launch) and answer with a 303 to the page to show next.

=============================================  ==============================================
``GET /``                                      runs, newest first, filtered, paged
``GET /runs/{run_id}``                         one run: header, graph, timeline, tasks
``POST /runs/{run_id}/cancel``                 cancel it; 303 back
``POST /runs/{run_id}/retry``                  resume it as a new run; 303 to it
``GET /runs/{run_id}/tasks/{node}``            one task run (``?partial=1``: the fragment)
``GET /runs/{run_id}/tasks/{node}/output.txt`` its captured output, as a download
``GET /artifacts/{content_hash}``              one artifact, its preview and lineage
``GET /pipelines``                             pipelines
``GET /pipelines/{name}``                      one pipeline, its Run form and its runs in the
                                               trackers (``?tracker=&page_token=&page_size=``)
``POST /pipelines/{name}/launch``              start a run; 303 to it
``GET /compare?runs=A,B``                      two runs side by side (either may be a
                                               tracker's run: ``mlflow:RUN_ID``)
``GET /schedules``                             schedules
``GET /schedules/{name}``                      one schedule: fire times, ticks
``POST /schedules/{name}/pause`` / ``resume``  pause or resume it; 303 back
``GET /models``                                registered models
``GET /models/{name}``                         one model: versions, metrics, deployments
=============================================  ==============================================
"""

from __future__ import annotations

from starlette.routing import Route

from .pages_compare import compare_page
from .pages_models import model_page, models_list
from .pages_pipelines import launch, pipeline_page, pipelines_list
from .pages_runs import cancel_run, retry_run, run_page, runs_list
from .pages_schedules import pause_schedule, resume_schedule, schedule_page, schedules_list
from .pages_tasks import artifact_page, task_output, task_page

routes: list[Route] = [
    Route("/", runs_list, name="runs"),
    Route("/runs/{run_id}", run_page, name="run"),
    Route("/runs/{run_id}/cancel", cancel_run, methods=["POST"], name="cancel_run"),
    Route("/runs/{run_id}/retry", retry_run, methods=["POST"], name="retry_run"),
    # before the task route, whose {node:path} would take "train/output.txt" as a node
    Route("/runs/{run_id}/tasks/{node:path}/output.txt", task_output, name="task_output"),
    Route("/runs/{run_id}/tasks/{node:path}", task_page, name="task"),
    Route("/artifacts/{content_hash}", artifact_page, name="artifact"),
    Route("/pipelines", pipelines_list, name="pipelines"),
    Route("/pipelines/{name}", pipeline_page, name="pipeline"),
    Route("/pipelines/{name}/launch", launch, methods=["POST"], name="launch"),
    Route("/compare", compare_page, name="compare"),
    Route("/schedules", schedules_list, name="schedules"),
    # a schedule's name may hold a `/`: {name:path}, its actions matched by their method
    Route("/schedules/{name:path}/pause", pause_schedule, methods=["POST"], name="pause"),
    Route("/schedules/{name:path}/resume", resume_schedule, methods=["POST"], name="resume"),
    Route("/schedules/{name:path}", schedule_page, name="schedule"),
    Route("/models", models_list, name="models"),
    Route("/models/{name}", model_page, name="model"),
]

__all__ = ["routes"]
