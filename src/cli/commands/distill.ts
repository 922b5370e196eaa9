import type { Command } from 'commander';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { shuffled } from '../../data/rng.js';
import { generate } from '../../model/generate.js';
import { type LoadedModel, encodePrompt, loadModel } from '../../model/load.js';
import type { PeftAdapter } from '../../peft/types.js';
import { type DistillExample, type DistillPrompt, DistillRunner, distillObjective, teacherExamples } from '../../train/distill.js';
import { trainLoop, trainables } from '../../train/loop.js';
import { checkOutDir, fileHash, makeAdapter, saveResult } from '../../train/session.js';
import { writeJsonAtomic } from '../../util/atomic.js';
import { fail } from '../../util/errors.js';
import { type TrainOptions, methodConfigOf, resolveTrainOptions } from '../train-options.js';
import { addTrainFlags, fingerprintOf, loopOptions } from './train.js';

const num = z.union([z.number(), z.string().trim().min(1).transform(Number)]).pipe(z.number().finite());
const extra = {
  systemPrompt: z.string().min(1),
  prompts: z.string().min(1),
  samplesPerPrompt: num.pipe(z.number().int().min(1)).default(4),
  maxTokens: num.pipe(z.number().int().min(1)).default(48),
  temperature: num.pipe(z.number().min(0)).default(1),
  format: z.enum(['chat', 'plain']).optional(),
};
type DistillOptions = TrainOptions & z.infer<z.ZodObject<typeof extra>>;

interface UserPrompt {
  prompt: string;
  expected?: string;
}

const PromptLine = z.object({ prompt: z.string().min(1), expected: z.string().optional() }).passthrough();

export function readPrompts(file: string): UserPrompt[] {
  if (!existsSync(file)) fail(`${file}: prompts file not found`);
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const out: UserPrompt[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    if (!file.endsWith('.jsonl')) return void out.push({ prompt: line });
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      fail(`${file}:${i + 1}: invalid JSON; each line must be {"prompt": "...", "expected"?: "..."}`);
    }
    const r = PromptLine.safeParse(raw);
    if (!r.success) fail(`${file}:${i + 1}: field "${r.error.issues[0]!.path.join('.') || 'prompt'}": ${r.error.issues[0]!.message}`);
    out.push(r.data);
  });
  if (out.length === 0) fail(`${file}: no prompts`);
  return out;
}

/** Student and teacher token ids of a user prompt ('chat': the template with/without the system message; 'plain': system text + prompt). */
function promptIds(m: LoadedModel, system: string, u: string, format: 'chat' | 'plain'): DistillPrompt {
  if (format === 'chat') return { student: encodePrompt(m.tokenizer, u, {}), teacher: encodePrompt(m.tokenizer, u, { system }) };
  return { student: encodePrompt(m.tokenizer, u), teacher: encodePrompt(m.tokenizer, system + u) };
}

async function taskAccuracy(m: LoadedModel, prompts: DistillPrompt[], expected: string[], adapter: PeftAdapter | null, teacher: boolean, maxTokens: number): Promise<number> {
  let hits = 0;
  for (let i = 0; i < prompts.length; i += 16) {
    const chunk = prompts.slice(i, i + 16);
    const gens = await generate(m.lm, chunk.map((p) => (teacher ? p.teacher : p.student)), {
      temperature: 0, topK: 0, topP: 1, seed: 0, maxTokens, eosIds: m.eosIds, adapter: teacher ? null : adapter,
    });
    gens.forEach((g, j) => {
      const text = m.tokenizer.decode(g.tokens, { skipSpecialTokens: true }).toLowerCase();
      if (text.includes(expected[i + j]!.toLowerCase())) hits++;
    });
  }
  return hits / prompts.length;
}

export async function runDistillCommand(raw: Record<string, unknown>): Promise<void> {
  const o = resolveTrainOptions({ method: 'soft-prompt', ...raw }, 'distill', extra) as DistillOptions;
  if (o.method !== 'soft-prompt' && o.method !== 'prefix') fail('distill: --method must be soft-prompt or prefix');
  if (o.data) fail('distill: use --prompts FILE for the user prompts');
  const method = methodConfigOf({ ...o, virtualTokens: o.virtualTokens ?? 16 }, 'distill');
  checkOutDir(o.out, o.resume, o.force);
  if (!existsSync(o.systemPrompt)) fail(`${o.systemPrompt}: system prompt file not found`);
  const system = readFileSync(o.systemPrompt, 'utf8');
  const m = loadModel(o.model);
  const format = o.format ?? (m.tokenizer.chatTemplate ? 'chat' : 'plain');
  const all = readPrompts(o.prompts);
  let heldOutIdx = new Set<number>();
  if (o.heldOutFile) fail('distill: use --held-out-fraction (held-out prompts come from --prompts)');
  const frac = o.heldOutFraction ?? 0.2;
  heldOutIdx = new Set(shuffled(all.map((_, i) => i), o.seed, 11).slice(0, Math.max(1, Math.round(all.length * frac))));
  const trainP = all.filter((_, i) => !heldOutIdx.has(i));
  const heldP = all.filter((_, i) => heldOutIdx.has(i));
  if (trainP.length === 0) fail(`${o.prompts}: no training prompts left after holding out ${heldP.length}`);
  const ids = (ps: UserPrompt[]) => ps.map((p) => promptIds(m, system, p.prompt, format));
  const systemTokens = m.tokenizer.encode(system, { addSpecialTokens: false }).length;
  mkdirSync(o.out, { recursive: true });
  writeJsonAtomic(join(o.out, 'train_config.json'), { objective: 'distill', format, systemTokens, ...o });
  const teacherOpts = { samples: o.samplesPerPrompt, maxTokens: o.maxTokens, temperature: o.temperature, batchSize: Math.max(o.batchSize, 8), quiet: o.quiet };
  const train: DistillExample[] = await teacherExamples(m, ids(trainP), { ...teacherOpts, seed: o.seed });
  const held: DistillExample[] = await teacherExamples(m, ids(heldP), { ...teacherOpts, seed: o.seed + 1 });
  const runner = new DistillRunner(m, held);
  const noPrompt = await runner.stats(null, held, o.batchSize);
  process.stderr.write(`distill: system prompt ${systemTokens} tokens -> ${method.kind} of ${(method as { virtualTokens: number }).virtualTokens} tokens; ` +
    `${trainP.length} train / ${heldP.length} held-out prompts; no-prompt KL ${noPrompt.kl.toFixed(4)}, agreement ${(noPrompt.agree * 100).toFixed(1)}%\n`);
  const adapter = await makeAdapter(m, method, o.seed);
  const objective = distillObjective(m, adapter, train, held, { batchSize: o.batchSize, seed: o.seed, baselineKl: noPrompt.kl, recompute: o.recompute });
  const hash = [o.prompts, o.systemPrompt].map(fileHash).join(',');
  const res = await trainLoop(trainables(adapter, m.lm.weights), objective, loopOptions({ ...o, method: method.kind }, `distill ${method.kind}`, fingerprintOf(o, hash), adapter));
  if (res.interrupted) return void process.stderr.write(`distill: stopped after step ${res.steps} (checkpoint saved; continue with --resume)\n`);
  const student = await runner.stats(adapter, held, o.batchSize);
  const report: Record<string, unknown> = {
    system_prompt_tokens: systemTokens,
    virtual_tokens: adapter.virtualTokens || adapter.prefixLength,
    held_out_prompts: heldP.length,
    kl_no_prompt: noPrompt.kl,
    kl_student: student.kl,
    kl_reduction: 1 - student.kl / noPrompt.kl,
    agreement_no_prompt: noPrompt.agree,
    agreement_student: student.agree,
  };
  const withExpected = heldP.map((p, i) => [p, i] as const).filter(([p]) => p.expected !== undefined);
  if (withExpected.length) {
    const ps = withExpected.map(([, i]) => ids(heldP)[i]!);
    const exp = withExpected.map(([p]) => p.expected!);
    report.task_accuracy_teacher = await taskAccuracy(m, ps, exp, null, true, o.maxTokens);
    report.task_accuracy_student = await taskAccuracy(m, ps, exp, adapter, false, o.maxTokens);
    report.task_accuracy_no_prompt = await taskAccuracy(m, ps, exp, null, false, o.maxTokens);
  }
  saveResult(m, adapter, o.out, { merge: false, summary: { steps: res.steps, final_loss: res.lastLoss, ...report } });
  process.stderr.write(
    `distill: held-out KL ${student.kl.toFixed(4)} (no prompt ${noPrompt.kl.toFixed(4)}, ${((1 - student.kl / noPrompt.kl) * 100).toFixed(1)}% lower); ` +
      `agreement ${(student.agree * 100).toFixed(1)}% (no prompt ${(noPrompt.agree * 100).toFixed(1)}%); saved to ${o.out}\n`,
  );
}

export function register(program: Command): void {
  addTrainFlags(program.command('distill').description('distil a long system prompt into a few trained tokens (context distillation)'))
    .option('--system-prompt <file>', 'the system prompt to distil (a text file)')
    .option('--prompts <file>', 'user prompts: .txt (one per line) or .jsonl {"prompt", "expected"?}')
    .option('--samples-per-prompt <n>', 'teacher continuations per prompt (default 4)')
    .option('--max-tokens <n>', 'length of teacher continuations (default 48)')
    .option('--temperature <t>', 'teacher sampling temperature (default 1)')
    .option('--format <f>', 'chat (template with a system message) | plain (system text + prompt); default: chat if the model has a template')
    .option('--held-out-fraction <x>', 'prompts held out for evaluation (default 0.2)')
    .action((opts) => runDistillCommand(opts));
}
