// What reaches the provider besides the gateway's key: client identity and
// network headers only when the provider's forward_headers lists them, and
// a model name that would walk the upstream path ("az/..") refused with a
// 400 before any upstream call. Driven with the official OpenAI SDK; the
// mock's /__mock/requests shows what the provider saw.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack } from '../lib/harness.mjs';

const IDENTITY = {
  'X-Forwarded-For': '10.9.8.7',
  'X-Forwarded-Host': 'intranet.example',
  'X-Forwarded-Proto': 'https',
  Forwarded: 'for=10.9.8.7;proto=https',
  'X-Real-IP': '10.9.8.7',
  'x-team': 'research',
};

describe('upstream hygiene', () => {
  let stack, sluice, mock;

  before(async () => {
    stack = await startStack({
      name: 'hygiene',
      config: (cfg) => {
        const base = cfg.providers.mock.base_url;
        const root = base.replace(/\/v1$/, '');
        cfg.providers.fwd = {
          kind: 'openai', base_url: base, api_key: 'env:MOCK_UPSTREAM_KEY',
          forward_headers: ['OpenAI-Organization', 'X-Forwarded-For'],
        };
        cfg.providers.az = { kind: 'azure', base_url: root, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.providers.gem = { kind: 'gemini', base_url: `${root}/v1beta`, api_key: 'env:MOCK_UPSTREAM_KEY' };
        cfg.models['fwd-mini'] = { targets: ['fwd/gpt-4o-mini'] };
        return cfg;
      },
    });
    ({ sluice, mock } = stack);
  });
  after(async () => { if (stack) await stack.stop(); });

  // An SDK set up by a team behind a proxy: organization and project are sent by the SDK itself.
  const client = () => new OpenAI({
    baseURL: sluice.baseURL, apiKey: sluice.key, maxRetries: 0, timeout: 15000,
    organization: 'org-client', project: 'proj_client', defaultHeaders: IDENTITY,
  });

  async function lastUpstream(model) {
    await mock.reset();
    const r = await client().chat.completions.create({ model, messages: [{ role: 'user', content: 'who am i' }] });
    assert.equal(r.choices[0].message.content, 'mock reply: who am i');
    const reqs = await mock.requests();
    assert.equal(reqs.length, 1, JSON.stringify(reqs.map((q) => q.path)));
    return reqs[0].headers;
  }

  it('drops identity and network headers by default', async () => {
    const h = await lastUpstream('gpt-4o-mini');
    for (const name of ['openai-organization', 'openai-project', 'x-forwarded-for', 'x-forwarded-host',
      'x-forwarded-proto', 'forwarded', 'x-real-ip']) {
      assert.equal(h[name], undefined, `${name} reached the provider: ${JSON.stringify(h)}`);
    }
    assert.equal(h.authorization, `Bearer ${mock.apiKey}`);
    // headers outside the policy's classes still pass
    assert.equal(h['x-team'], 'research');
    assert.match(h['user-agent'] || '', /OpenAI\/JS/);
  });

  it('forwards exactly what forward_headers lists', async () => {
    const h = await lastUpstream('fwd-mini');
    assert.equal(h['openai-organization'], 'org-client');
    assert.equal(h['x-forwarded-for'], '10.9.8.7');
    for (const name of ['openai-project', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded', 'x-real-ip']) {
      assert.equal(h[name], undefined, `${name} reached the provider: ${JSON.stringify(h)}`);
    }
    assert.equal(h.authorization, `Bearer ${mock.apiKey}`);
  });

  it('refuses a deployment or model name that would walk the upstream path', async () => {
    await mock.reset();
    for (const model of ['az/..', 'az/.', 'az/../../v1/chat/completions', 'az/-x', 'az/a b', 'gem/..',
      'gem/models/..', 'gem/../../v1/files']) {
      await assert.rejects(
        client().chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] }),
        (e) => {
          assert.equal(e.status, 400, `${model}: ${e.message}`);
          assert.equal(e.code, 'invalid_model', model);
          assert.equal(e.param, 'model', model);
          assert.ok(e.message.includes(`\`${model}\``) && /letters, digits/.test(e.message), e.message);
          return true;
        });
    }
    assert.deepEqual((await mock.requests()).map((q) => q.path), [], 'nothing may reach the provider');

    // a deployment name Azure accepts still goes through, as one path segment
    const r = await client().chat.completions.create({ model: 'az/gpt-4o.mini_2', messages: [{ role: 'user', content: 'ok' }] });
    assert.equal(r.choices[0].message.content, 'mock reply: ok');
    const g = await client().chat.completions.create({ model: 'gem/gemini-2.5-flash', messages: [{ role: 'user', content: 'ok' }] });
    assert.equal(g.choices[0].message.content, 'mock reply: ok');
    const paths = (await mock.requests()).map((q) => q.path);
    assert.equal(paths.length, 2, JSON.stringify(paths));
    assert.match(paths[0], /^\/openai\/deployments\/gpt-4o\.mini_2\/chat\/completions\?api-version=/);
    assert.equal(paths[1], '/v1beta/models/gemini-2.5-flash:generateContent');
  });
});
