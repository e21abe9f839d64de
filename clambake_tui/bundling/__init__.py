"""Bundling: route:review branches into one pull request, the train schedule, the local fallback.

Entry points (each module imports only what it needs; nothing here pulls in the others):

- `landing.land_agent(process, paths, config, client)`: land one finished run (push, labels,
  comment, then `trigger_bundle`); what `agents.hooks.on_agent_finished` calls.
- `trigger.trigger_bundle(client, repo, config, force=, dry_run=, dispatch=)`: dispatch the
  bundling workflow, or bundle locally when Actions cannot (and `fallback_local` allows);
  the outcome says which path ran and why.
- `bundler.Bundler(client, repo, config).run(force=, dry_run=)` / `.check(force=)`: the
  bundler itself (`clambake bundle`); `schedule.TrainSchedule` for the departure window.
- `workflow.install_workflow(root, config)`: `clambake actions --install-workflow`.
"""
