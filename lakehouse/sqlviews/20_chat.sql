-- chat(model, prompt) -> VARCHAR: one LLM call per row, as the caller (its profile, if any).
CREATE OR REPLACE MACRO chat(model, prompt) AS system.main.lh_chat(system.main.getvariable('lh_profile'), model, prompt);
