import { test } from 'node:test';
import assert from 'node:assert/strict';
import { methodConfigOf, resolveTrainOptions } from './train-options.js';
import { PlumError } from '../util/errors.js';

const lora = (flags: Record<string, unknown>) => methodConfigOf(resolveTrainOptions({ model: 'm', out: 'o', method: 'lora', ...flags }, 'plum train sft'), 'plum train sft');

test('LoRA module options from flags: names, one regex or all-linear; per-module rank and alpha patterns', () => {
  assert.deepEqual(lora({ targetModules: 'q_proj, v_proj' }), { kind: 'lora', r: 8, alpha: 16, dropout: 0, targetModules: ['q_proj', 'v_proj'], rslora: false });
  assert.equal((lora({ targetModules: 'all-linear' }) as { targetModules: unknown }).targetModules, 'all-linear');
  assert.equal((lora({ targetModules: '.*\\.(q_proj|v_proj)' }) as { targetModules: unknown }).targetModules, '.*\\.(q_proj|v_proj)');
  const c = lora({ rankPattern: 'v_proj=4, mlp.down_proj=16', alphaPattern: 'v_proj=8', excludeModules: 'model.layers.0.self_attn.q_proj' });
  assert.deepEqual(c, {
    kind: 'lora', r: 8, alpha: 16, dropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], rslora: false,
    rankPattern: { v_proj: 4, 'mlp.down_proj': 16 }, alphaPattern: { v_proj: 8 }, excludeModules: ['model.layers.0.self_attn.q_proj'],
  });
  // from a config file the patterns are objects
  assert.deepEqual((lora({ rankPattern: { q_proj: 2 } }) as { rankPattern: unknown }).rankPattern, { q_proj: 2 });
});

test('bad pattern flags name the flag and the part', () => {
  const bad = (flags: Record<string, unknown>, re: RegExp): void => assert.throws(() => lora(flags), (e: unknown) => e instanceof PlumError && re.test(e.message));
  bad({ rankPattern: 'v_proj:4' }, /plum train sft: --rank-pattern: "v_proj:4" is not name=number/);
  bad({ rankPattern: 'v_proj=0' }, /plum train sft: --rank-pattern: /);
  bad({ alphaPattern: 'v_proj=x' }, /--alpha-pattern: "v_proj=x" is not name=number/);
  assert.throws(() => resolveTrainOptions({ model: 'm', out: 'o', method: 'soft-prompt', rankPattern: 'q_proj=2' }, 'plum train sft'), /--rank-pattern does not apply to --method soft-prompt \(it is an option of lora\)/);
});

test('modules_to_save from flags: a list, with ensure_weight_tying; not for other methods', () => {
  const c = lora({ modulesToSave: 'lm_head, embed_tokens', ensureWeightTying: true }) as { modulesToSave?: string[]; ensureWeightTying?: boolean };
  assert.deepEqual(c.modulesToSave, ['lm_head', 'embed_tokens']);
  assert.equal(c.ensureWeightTying, true);
  assert.equal((lora({}) as { modulesToSave?: string[] }).modulesToSave, undefined);
  assert.throws(() => resolveTrainOptions({ model: 'm', out: 'o', method: 'prefix', modulesToSave: 'lm_head' }, 'plum train sft'), /--modules-to-save does not apply to --method prefix \(it is an option of lora\)/);
});
