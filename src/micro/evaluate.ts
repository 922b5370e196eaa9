/**
 * Held-out accuracy of a model on each plum-micro task type: fresh tasks from a seed never used
 * for the training corpus, answered greedily, judged by the task's own judge.
 */
import type { ModelAdapter } from '../model/adapter.js';
import { generate } from '../model/generate.js';
import { type LoadedModel, encodeChat } from '../model/load.js';
import { generateCorpus } from './corpus.js';
import { judgeTask } from './judge.js';
import { TASK_TYPES, type ChatTask, type TaskType } from './tasks.js';

export interface TaskAccuracy {
  task: TaskType;
  accuracy: number;
  n: number;
}

/** Held-out tasks: `perTask` of every type (the assistant turn is what the model must produce). */
export function heldOutTasks(seed: number, perTask: number): ChatTask[] {
  const mix = Object.fromEntries(TASK_TYPES.map((t) => [t, 1])) as Record<TaskType, number>;
  return generateCorpus({ seed, stories: 0, chats: perTask * TASK_TYPES.length, mix }).filter((r): r is ChatTask => r.kind === 'chat');
}

export async function answerTasks(m: LoadedModel, tasks: ChatTask[], adapter: ModelAdapter | null = null, maxTokens = 24, batchSize = 32): Promise<string[]> {
  const answers: string[] = [];
  for (let i = 0; i < tasks.length; i += batchSize) {
    const chunk = tasks.slice(i, i + batchSize);
    const prompts = chunk.map((t) => encodeChat(m.tokenizer, t.messages.slice(0, -1)));
    const gens = await generate(m.lm, prompts, { temperature: 0, topK: 0, topP: 1, seed: 0, maxTokens, eosIds: m.eosIds, adapter });
    for (const g of gens) answers.push(m.tokenizer.decode(g.tokens, { skipSpecialTokens: true }).trim());
  }
  return answers;
}

export async function taskAccuracy(m: LoadedModel, opts: { seed: number; perTask: number; adapter?: ModelAdapter | null }): Promise<TaskAccuracy[]> {
  const tasks = heldOutTasks(opts.seed, opts.perTask);
  const answers = await answerTasks(m, tasks, opts.adapter ?? null);
  return TASK_TYPES.map((task) => {
    const idx = tasks.map((t, i) => (t.task === task ? i : -1)).filter((i) => i >= 0);
    const ok = idx.filter((i) => judgeTask(tasks[i]!, answers[i]!)).length;
    return { task, accuracy: idx.length ? ok / idx.length : NaN, n: idx.length };
  });
}
