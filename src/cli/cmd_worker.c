/*
 * cmd_worker.c - `bgremover worker`: an inference node of a scaled-out
 * service. It shares the API nodes' PostgreSQL store and result storage,
 * claims their queued requests and batch items, and delivers webhooks; it
 * takes serve's options (cmd_serve.c runs both) and serves HTTP only for
 * health and metrics, when --listen is given. docs/DEPLOY.md.
 */
#include "cli/cli.h"

int bgr_cmd_worker(int argc, char **argv)
{
    return bgr_cli_run_node(argc, argv, true);
}
