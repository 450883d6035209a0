import { describe, expect, it } from 'vitest';
import { alertTopic, statusTopic, topicLevel } from '../../../src/connectors/mqtt/alert-topic.js';
import { clientIdFor, displayUrl } from '../../../src/connectors/mqtt/connect-options.js';
import { compileJsonPointer, MISSING } from '../../../src/connectors/mqtt/json-pointer.js';
import { parseTagTemplate, type TagTemplate } from '../../../src/connectors/mqtt/tag-template.js';
import { matchingFilter, topicFilterProblem, topicMatches } from '../../../src/connectors/mqtt/topic-filter.js';
import { makeAlert } from '../../support/alert-event.js';
import { brokerConfig } from '../../fixtures/mqtt/config-with-defaults.js';

describe('topic filters', () => {
  it.each([
    ['a/+/c', 'a/b/c', true],
    ['a/+/c', 'a/b/d', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['#', 'a/b', true],
    ['#', '$SYS/broker/load', false],
    ['+/b', '/b', true],
    ['a/b', 'a/b/c', false],
    ['a/+', 'a', false],
  ])('%s matches %s: %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });

  it('validates filters and strips shared-subscription prefixes', () => {
    expect(topicFilterProblem('a/#')).toBeUndefined();
    expect(topicFilterProblem('a/#/b')).toMatch(/whole level and the last/);
    expect(topicFilterProblem('a/b#')).toMatch(/whole level/);
    expect(topicFilterProblem('')).toMatch(/empty/);
    expect(matchingFilter('$share/g1/plant/+/x')).toBe('plant/+/x');
  });
});

describe('tag templates', () => {
  const t = (s: string): TagTemplate => parseTagTemplate(s) as TagTemplate;

  it('renders topic levels and the whole topic', () => {
    expect(t('{2}.{4}.rms').render('plant/press1/x/axis'.split('/'), 'plant/press1/x/axis')).toBe('press1.axis.rms');
    expect(t('{topic}').render(['a', 'b'], 'a/b')).toBe('a/b');
    expect(t('const').constant).toBe(true);
    expect(t('{3}').render(['a', 'b'], 'a/b')).toBeUndefined();
    expect(t('{2}.{7}').maxLevel).toBe(7);
  });

  it('explains what is wrong with a bad template', () => {
    expect(parseTagTemplate('{0}')).toMatch(/unknown placeholder \{0\}/);
    expect(parseTagTemplate('a}b')).toMatch(/unbalanced/);
  });
});

describe('JSON pointers', () => {
  it('follows RFC 6901, telling missing from null', () => {
    const doc = { a: { 'b/c': [10, null], '~k': 1 }, '': 5 };
    expect(compileJsonPointer('/a/b~1c/0')(doc)).toBe(10);
    expect(compileJsonPointer('/a/b~1c/1')(doc)).toBeNull();
    expect(compileJsonPointer('/a/~0k')(doc)).toBe(1);
    expect(compileJsonPointer('/')(doc)).toBe(5);
    expect(compileJsonPointer('/a/b~1c/2')(doc)).toBe(MISSING);
    expect(compileJsonPointer('/a/b~1c/01')(doc)).toBe(MISSING);
    expect(compileJsonPointer('/a/toString')(doc)).toBe(MISSING);
    expect(() => compileJsonPointer('a')).toThrow(SyntaxError);
  });
});

describe('alert and status topics', () => {
  it('fills the template and keeps each value within one level', () => {
    const alert = { ...makeAlert(1), asset: 'line-1/press#2', severity: 'critical' as const };
    expect(alertTopic('lg/{gateway}/{asset}/{model}/{kind}/{severity}', alert, 'gw+1')).toBe(
      'lg/gw_1/line-1_press_2/press-fault/equipment_fault/critical',
    );
    const { asset: _asset, ...withoutAsset } = alert;
    expect(alertTopic('lg/{asset}', withoutAsset, 'gw')).toBe('lg/_');
    expect(statusTopic('lineguard/{gateway}/status', 'gw-7')).toBe('lineguard/gw-7/status');
    expect(topicLevel('')).toBe('_');
  });
});

describe('client ids and URLs', () => {
  it('gives every connection its own stable client id', () => {
    const b = brokerConfig({ url: 'mqtt://h:1883', name: 'site' });
    expect(clientIdFor(b, 'gw1', 'alerts')).toBe('lineguard-gw1-site-alerts');
    expect(clientIdFor({ ...b, clientId: 'plant7' }, 'gw1', 'source-vib')).toBe('plant7-source-vib');
  });

  it('never shows user info of a URL', () => {
    expect(displayUrl('mqtts://u:p@h:8883')).toBe('mqtts://h:8883');
    expect(displayUrl('mqtt://h:1883')).toBe('mqtt://h:1883');
  });
});
